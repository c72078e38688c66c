import { ConfigError, loadConfig } from './config/load-config';
import type { Config } from './config/config';

/**
 * config -> telemetry -> compose -> listen -> graceful shutdown.
 * Modules that open connections are required only after configuration
 * passed, so a bad variable ends the process with its message and nothing else.
 */
function readConfigOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write('bff-gateway: invalid configuration, not starting:\n');
      for (const problem of error.problems) process.stderr.write(`  ${problem}\n`);
      process.exit(1);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfigOrExit();
  // Instrumentation patches modules as they load: the SDK starts before anything requires express, ioredis, undici or kafkajs.
  const { startTelemetry } = require('./telemetry/tracing') as typeof import('./telemetry/tracing');
  const telemetry = startTelemetry(config.telemetry, config.server.environment);
  const { createLogger } = require('./telemetry/logger') as typeof import('./telemetry/logger');
  const { composeGateway } = require('./composition-root') as typeof import('./composition-root');
  const { buildRequestListener } = require('./app') as typeof import('./app');

  const logger = createLogger({
    level: config.logging.level,
    format: config.logging.format,
    service: config.telemetry.serviceName,
    version: config.telemetry.serviceVersion,
  });
  (require('./telemetry/process-warnings') as typeof import('./telemetry/process-warnings')).routeProcessWarnings(logger);
  let isShuttingDown = false;
  const gateway = composeGateway(config, logger, { isShuttingDown: () => isShuttingDown });
  const { createGatewayServer } = require('./http/server') as typeof import('./http/server');
  const server = createGatewayServer(buildRequestListener(gateway.dependencies), config.server.tls);
  await server.listen(config.server.port).catch((error: unknown) => {
    logger.fatal({ err: (error as Error).message }, 'cannot listen');
    process.exit(1);
  });
  logger.info(
    { port: config.server.port, publicOrigin: config.server.publicOrigin, environment: config.server.environment, tls: server.isTls },
    `bff-gateway listening on :${config.server.port}${server.isTls ? ' (TLS, h2 and http/1.1)' : ''}`,
  );

  const shutdown = async (signal: string) => {
    if (isShuttingDown) return;
    isShuttingDown = true;
    logger.info({ signal }, 'shutting down: no new connections; answering accepted requests and asking their clients to close');
    const { isClean } = await server.drain(config.server.shutdownGraceSeconds * 1000);
    if (!isClean) logger.warn('grace period over; remaining connections were closed');
    await gateway.close().catch((error: unknown) => logger.error({ err: (error as Error).message }, 'error while closing clients'));
    await telemetry?.shutdown().catch(() => undefined);
    logger.info('stopped');
    logger.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`bff-gateway: unhandled rejection: ${(reason as Error)?.message ?? String(reason)}\n`);
});

main().catch((error: unknown) => {
  process.stderr.write(`bff-gateway: could not start: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
