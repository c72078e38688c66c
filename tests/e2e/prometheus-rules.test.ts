import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { PROMTOOL_BINARY } from '../support/prometheus';

const run = promisify(execFile);

const PROMETHEUS_DIR = resolve(__dirname, '..', '..', 'deploy', 'prometheus');
const RULES_DIR = join(PROMETHEUS_DIR, 'rules');
const UNIT_TESTS_DIR = join(PROMETHEUS_DIR, 'tests');
const RUNBOOK = join(PROMETHEUS_DIR, 'RUNBOOK.md');

const ruleFiles = readdirSync(RULES_DIR).filter((name) => name.endsWith('.yml')).map((name) => join(RULES_DIR, name));
const unitTestFiles = readdirSync(UNIT_TESTS_DIR).filter((name) => name.endsWith('.yml')).map((name) => join(UNIT_TESTS_DIR, name));

interface AlertingRule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface UnitTestFile {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

function alertingRules(): AlertingRule[] {
  return ruleFiles.flatMap((file) => {
    const content = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<Partial<AlertingRule>> }> };
    return content.groups.flatMap((group) => group.rules.filter((rule): rule is AlertingRule => typeof rule.alert === 'string'));
  });
}

/** promtool prints its findings on stdout and stderr; a failed run rejects with both attached. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(PROMTOOL_BINARY, args, { cwd: PROMETHEUS_DIR, timeout: 30_000 });
    return `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${failure.stdout ?? ''}${failure.stderr ?? failure.message}`);
  }
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Runbook sections by anchor: the text under each `## ` heading. */
function runbookSections(): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string | undefined;
  for (const line of readFileSync(RUNBOOK, 'utf8').split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading) {
      current = anchorOf(heading[1]!);
      sections.set(current, '');
    } else if (current) {
      sections.set(current, `${sections.get(current)}${line}\n`);
    }
  }
  return sections;
}

describe('Prometheus rules in deploy/prometheus', () => {
  beforeAll(() => {
    if (!existsSync(PROMTOOL_BINARY)) throw new Error(`${PROMTOOL_BINARY} not found: install Debian's "prometheus" package (or set PROMTOOL_BIN)`);
  });

  it('promtool accepts prometheus.yml and the rule files it loads', async () => {
    // Static targets are not resolved by `check config`, so the compose host name is fine here.
    const output = await promtool('check', 'config', 'prometheus.yml');
    expect(output).toContain('is valid prometheus config file syntax');
  });

  it('promtool accepts every rule file', async () => {
    const output = await promtool('check', 'rules', ...ruleFiles);
    expect(output).toMatch(/SUCCESS/);
  });

  it('promtool unit tests pass for every alert and recording rule', async () => {
    const output = await promtool('test', 'rules', ...unitTestFiles);
    expect(output).not.toMatch(/FAILED/);
    expect(output.match(/SUCCESS/g)).toHaveLength(unitTestFiles.length);
  });

  it('every alert is unit-tested both firing and not firing', () => {
    const firing = new Set<string>();
    const silent = new Set<string>();
    for (const file of unitTestFiles) {
      const content = parse(readFileSync(file, 'utf8')) as UnitTestFile;
      for (const test of content.tests) {
        for (const check of test.alert_rule_test ?? []) {
          ((check.exp_alerts ?? []).length > 0 ? firing : silent).add(check.alertname);
        }
      }
    }
    const names = alertingRules().map((rule) => rule.alert);
    expect(names.filter((name) => !firing.has(name))).toEqual([]);
    expect(names.filter((name) => !silent.has(name))).toEqual([]);
  });

  it('every alert has a severity, a summary, a description and a runbook section that says what it means, how to check and how to mitigate', () => {
    const sections = runbookSections();
    const problems: string[] = [];
    for (const rule of alertingRules()) {
      const annotations = rule.annotations ?? {};
      if (!['critical', 'warning'].includes(rule.labels?.severity ?? '')) problems.push(`${rule.alert}: severity must be critical or warning`);
      if (!annotations.summary) problems.push(`${rule.alert}: no summary`);
      if (!annotations.description) problems.push(`${rule.alert}: no description`);
      const runbook = /^deploy\/prometheus\/RUNBOOK\.md#([a-z0-9_-]+)$/.exec(annotations.runbook ?? '');
      if (!runbook) {
        problems.push(`${rule.alert}: runbook annotation must be deploy/prometheus/RUNBOOK.md#<anchor>`);
        continue;
      }
      const section = sections.get(runbook[1]!);
      if (section === undefined) {
        problems.push(`${rule.alert}: RUNBOOK.md has no section #${runbook[1]}`);
        continue;
      }
      for (const part of ['What it means', 'How to check', 'How to mitigate']) {
        if (!section.includes(`**${part}.**`)) problems.push(`${rule.alert}: runbook section lacks "${part}"`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('rules read raw series of the bff-gateway job only, so another job exporting http_requests_total does not count', () => {
    const exprs = ruleFiles.flatMap((file) => {
      const content = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
      return content.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
    });
    // A raw metric name (recording rules are `level:metric:operations` and are scoped already).
    const rawSeries = /(?<![:\w])(up|http_\w+|bff_\w+|circuit_\w+|process_\w+|nodejs_\w+)(?=\{|\[|\)|\s|$)/;
    const unscoped = exprs.filter((expr) => rawSeries.test(expr) && !expr.includes('job="bff-gateway"'));
    expect(unscoped).toEqual([]);
  });
});
