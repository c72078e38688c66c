import { randomBytes } from 'node:crypto';
import { TEST_SERVERS, testServerCacheDirectory } from './test-servers';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { atProcessExit, RestartableServer, runToCompletion, startGuarded, type GuardedProcess } from './child-process';
import { getFreePort, withFreePort } from './ports';
import { withTimeout } from './wait';

/**
 * A single-node Apache Kafka broker in KRaft mode (broker and controller in one
 * JVM), its jars fetched from Maven Central by `mvn` into a cache outside the
 * working tree (SPEC section 9).
 *
 * Kafka 4.x: kafkajs 2.2.4 negotiates protocol versions that Kafka 4 still
 * serves (KIP-896 removed only versions older than kafkajs uses); the
 * integration suite proves produce, the idempotent producer and consumer groups.
 */
export interface KafkaBroker {
  readonly version: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, the value for KAFKA_BROKERS. */
  readonly brokers: string;
  /** Stops the broker (SIGTERM, then SIGKILL) and resolves once the JVM has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data directory after `stop()`; resolves once it serves metadata. */
  restart(): Promise<void>;
  /** Stops the broker for good and deletes its data directory. */
  close(): Promise<void>;
  createTopic(topic: string, partitions?: number): Promise<void>;
}

/** Keep equal to `kafka.version` in tests/support/kafka/pom.xml. */
export const KAFKA_VERSION = TEST_SERVERS.kafka.version;

const POM_DIR = join(__dirname, 'kafka');
const JAVA_BINARY = process.env.JAVA_BIN ?? 'java';
const MVN_BINARY = process.env.MVN_BIN ?? 'mvn';

// First run downloads ~45 MB of jars; later runs find them in the cache.
const PROVISION_TIMEOUT_MS = 300_000;
// A cold JVM brings the broker up in 5-8 s here; the margin is for a loaded CI machine.
const READY_TIMEOUT_MS = 60_000;
const FORMAT_TIMEOUT_MS = 60_000;
// A clean shutdown of an idle single node takes about a second.
const STOP_TIMEOUT_MS = 10_000;
const PROBE_INTERVAL_MS = 250;
const OUTPUT_TAIL_CHARS = 6_000;
const COMPLETE_MARKER = '.complete';

const JVM_OPTIONS = [
  '-Xms128m',
  '-Xmx512m',
  // A short-lived test broker: favour start-up time over peak throughput.
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Djava.awt.headless=true',
  `-Dlog4j2.configurationFile=${join(POM_DIR, 'log4j2.properties')}`,
];

const liveDataDirs = new Set<string>();

// A Jest worker that ends without calling close() must not leave the broker's data behind.
function removeLiveDataDirs(): void {
  for (const dataDir of liveDataDirs) rmSync(dataDir, { recursive: true, force: true });
}

/** `${XDG_CACHE_HOME:-~/.cache}/bff-gateway/kafka-<version>`: outside the repository, kept between runs. */
export function kafkaCacheDir(version = KAFKA_VERSION): string {
  return testServerCacheDirectory('kafka', version);
}

/**
 * Returns the directory holding every jar of the broker, running mvn only when
 * the cache is not complete. Safe when two Jest workers provision at once:
 * each copies into its own staging directory and the first rename wins.
 */
export async function provisionKafkaJars(version = KAFKA_VERSION): Promise<string> {
  const target = kafkaCacheDir(version);
  if (existsSync(join(target, COMPLETE_MARKER))) return target;
  await requireBinary(MVN_BINARY, ['-v'], 'mvn is needed to fetch the Kafka test broker from Maven Central: apt-get install -y maven (or set MVN_BIN)');

  mkdirSync(dirname(target), { recursive: true });
  removeAbandonedStaging(target);
  const staging = mkdtempSync(`${target}.partial-`);
  process.stderr.write(`[kafka] first use of Kafka ${version}: fetching its jars from Maven Central with mvn into ${target}\n`);
  const started = Date.now();
  const args = [
    '-q', '-B', '-Dstyle.color=never',
    '-f', join(POM_DIR, 'pom.xml'),
    `-Dkafka.version=${version}`,
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${staging}`,
  ];
  const result = await run(MVN_BINARY, args, PROVISION_TIMEOUT_MS);
  const jars = readdirSync(staging).filter((name) => name.endsWith('.jar'));
  if (result.code !== 0 || !jars.includes(`kafka_2.13-${version}.jar`)) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`mvn could not fetch Kafka ${version} (${result.code}): ${MVN_BINARY} ${args.join(' ')}\n${result.output}`);
  }
  writeFileSync(join(staging, COMPLETE_MARKER), `${jars.length} jars from Maven Central, ${new Date().toISOString()}\n`);
  try {
    renameSync(staging, target);
  } catch (error) {
    // Another worker finished first; its copy is as good as ours.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(target, COMPLETE_MARKER))) throw error;
  }
  process.stderr.write(`[kafka] ${jars.length} jars cached in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return target;
}

/** Staging directories of runs that were killed mid-download; a live one is younger than the mvn time limit. */
function removeAbandonedStaging(target: string): void {
  const prefix = `${basename(target)}.partial-`;
  for (const name of readdirSync(dirname(target))) {
    const path = join(dirname(target), name);
    if (name.startsWith(prefix) && Date.now() - statSync(path).mtimeMs > 2 * PROVISION_TIMEOUT_MS) rmSync(path, { recursive: true, force: true });
  }
}

async function requireBinary(binary: string, args: string[], message: string): Promise<void> {
  const result = await run(binary, args, 30_000);
  if (result.code !== 0) throw new Error(message);
}

/** Runs a command to completion (bounded); `code` is the exit code, or why there is none. */
async function run(binary: string, args: string[], timeoutMs: number): Promise<{ code: number | string; output: string }> {
  try {
    const { exitCode, signal, isTimedOut, output } = await runToCompletion(binary, args, { timeoutMs, outputTailChars: OUTPUT_TAIL_CHARS });
    return { code: exitCode ?? `killed by ${signal}${isTimedOut ? ` (timeout ${timeoutMs} ms)` : ''}`, output };
  } catch (error) {
    return { code: error instanceof Error ? error.message : String(error), output: '' };
  }
}

export interface StartKafkaOptions {
  /** Topics created (1 partition) before the broker is handed over. */
  readonly topics?: readonly string[];
}

/** Starts a broker on free loopback ports with a fresh data directory; resolves once it serves metadata. */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  atProcessExit(removeLiveDataDirs);
  const jarsDir = await provisionKafkaJars();
  await requireBinary(JAVA_BINARY, ['-version'], 'java 17 or newer is needed to run the Kafka test broker: apt-get install -y openjdk-17-jre-headless (or set JAVA_BIN)');
  return withFreePort(async (port) => {
    const controllerPort = await getFreePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'bff-kafka-'));
    liveDataDirs.add(dataDir);
    try {
      const propertiesFile = writeServerProperties(dataDir, port, controllerPort);
      await formatStorage(jarsDir, propertiesFile);
      const broker = new KafkaProcess(port, jarsDir, propertiesFile, dataDir);
      await broker.start();
      for (const topic of options.topics ?? []) await broker.createTopic(topic);
      return broker;
    } catch (error) {
      removeDataDir(dataDir);
      throw error;
    }
  });
}

class KafkaProcess extends RestartableServer implements KafkaBroker {
  readonly version = KAFKA_VERSION;
  readonly brokers: string;

  constructor(
    readonly port: number,
    private readonly jarsDir: string,
    private readonly propertiesFile: string,
    private readonly dataDir: string,
  ) {
    super(`Kafka on port ${port}`);
    this.brokers = `127.0.0.1:${port}`;
  }

  protected spawn(): Promise<GuardedProcess> {
    return spawnBroker(this.jarsDir, this.propertiesFile, this.port);
  }

  async close(): Promise<void> {
    await this.stop();
    removeDataDir(this.dataDir);
  }

  async createTopic(topic: string, partitions = 1): Promise<void> {
    const admin = new Kafka({ clientId: 'bff-tests-admin', brokers: [this.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true, timeout: 10_000 });
    } finally {
      await admin.disconnect();
    }
  }
}

function removeDataDir(dataDir: string): void {
  liveDataDirs.delete(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
}

function writeServerProperties(dataDir: string, port: number, controllerPort: number): string {
  const properties = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // A static voter set: the controller keeps its identity across restart() on the same ports.
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': join(dataDir, 'logs'),
    'num.partitions': '1',
    'auto.create.topics.enable': 'true',
    // One node: every internal topic with one replica and one partition, so groups and transactions start at once.
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '1',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
  };
  const file = join(dataDir, 'server.properties');
  writeFileSync(file, Object.entries(properties).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
  return file;
}

/** Kafka's 22-character base64url cluster id (what `kafka-storage.sh random-uuid` prints). */
function randomClusterId(): string {
  return randomBytes(16).toString('base64url');
}

/** What `kafka-storage.sh format -t <id> -c server.properties` does: KRaft needs a formatted metadata directory. */
async function formatStorage(jarsDir: string, propertiesFile: string): Promise<void> {
  const args = [...JVM_OPTIONS, '-cp', join(jarsDir, '*'), 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', propertiesFile];
  const result = await run(JAVA_BINARY, args, FORMAT_TIMEOUT_MS);
  if (result.code !== 0) throw new Error(`formatting the Kafka storage failed (${result.code}):\n${result.output}`);
}

function spawnBroker(jarsDir: string, propertiesFile: string, port: number): Promise<GuardedProcess> {
  return startGuarded(JAVA_BINARY, [...JVM_OPTIONS, '-cp', join(jarsDir, '*'), 'kafka.Kafka', propertiesFile], {
    name: `Kafka on 127.0.0.1:${port}`,
    readiness: 'serve metadata',
    isReady: () => servesMetadata(port),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: PROBE_INTERVAL_MS,
    outputLabel: 'Kafka',
    outputTailChars: OUTPUT_TAIL_CHARS,
    stopGraceMs: STOP_TIMEOUT_MS,
  });
}

/** Ready means a client gets the cluster's metadata with this broker in it, not just an open port. */
async function servesMetadata(port: number): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'bff-tests-probe',
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 500,
    requestTimeout: 2_000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.some((broker) => broker.port === port) && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** A message as a test sees it: key and value decoded as UTF-8. */
export interface ReceivedMessage {
  readonly key: string | undefined;
  readonly value: string;
  readonly headers: Record<string, string>;
  readonly offset: string;
}

/** Everything on a topic from its beginning, collected by a consumer of its own group. */
export interface TopicReader {
  readonly messages: readonly ReceivedMessage[];
  /** Resolves with the matching messages (all seen so far) once there are at least `count`; rejects after `timeoutMs`. */
  waitFor(predicate: (message: ReceivedMessage) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

const GROUP_JOIN_TIMEOUT_MS = 20_000;

/** Subscribes from the beginning of `topic` and resolves once the consumer has joined its group. */
export async function readTopic(broker: KafkaBroker, topic: string): Promise<TopicReader> {
  const kafka = new Kafka({ clientId: 'bff-tests-reader', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `bff-tests-${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100 });
  const messages: ReceivedMessage[] = [];
  const listeners = new Set<() => void>();
  let joined: () => void = () => undefined;
  const hasJoined = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      messages.push({
        key: message.key?.toString('utf8'),
        value: message.value?.toString('utf8') ?? '',
        headers: decodeHeaders(message.headers),
        offset: message.offset,
      });
      for (const listener of listeners) listener();
    },
  });
  await withTimeout(hasJoined, GROUP_JOIN_TIMEOUT_MS, `the test consumer did not join its group on ${topic} within ${GROUP_JOIN_TIMEOUT_MS} ms`);

  return {
    messages,
    waitFor(predicate, count = 1, timeoutMs = 20_000) {
      // Each message is tested once per waiter, so waiting for thousands stays linear.
      const found: ReceivedMessage[] = [];
      let scanned = 0;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (; scanned < messages.length; scanned += 1) {
            if (predicate(messages[scanned]!)) found.push(messages[scanned]!);
          }
          if (found.length < count) return;
          listeners.delete(check);
          clearTimeout(deadline);
          resolve(found);
        };
        const deadline = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`expected ${count} matching message(s) on ${topic} within ${timeoutMs} ms, saw ${found.length} among ${messages.length}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async close() {
      await consumer.disconnect();
    },
  };
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) decoded[name] = Array.isArray(value) ? value.map(String).join(',') : value.toString();
  }
  return decoded;
}
