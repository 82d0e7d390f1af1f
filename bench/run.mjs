// The side-by-side benchmark (started by bench/run.sh, which installs and builds first).
//
//   node bench/run.mjs --build DIR [--quick] [--soak] [--runs N] [--events N] [--bytes N]
//
// It starts two emulators (`sfstream emulator`, HTTP and HTTPS), preloads each with a backlog
// of platform events, and runs every client, interleaved (the order rotates from run to run):
//   drain    replay -2 of the whole backlog: events/s between the first and the last event,
//            client CPU ms per 1,000 events and peak RSS (wait4's rusage of the child process:
//            start-up and login included), time from process start to the first event;
//   latency  replay -1 while the emulator publishes at a steady rate, each event carrying its
//            publication time: publish-to-receive p50, p99 and max.
// Clients: `sfstream subscribe` (stdout to /dev/null for drain, to a pipe read line by line for
// latency), the library alone (bench_drain), faye, the CometD JavaScript client, jsforce, and
// the raw ceiling reader (bench_raw_reader). Medians of the runs go into one markdown table,
// with ratios against the best JavaScript peer; it is printed and (except with --quick) written
// to bench/RESULTS.md.
// --soak: sfstream subscribe for 10 minutes at 2,000 events/s, RSS printed at start and end.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const quick = flag('--quick');
const build = value('--build', join(here, '..', 'build-bench'));
const runs = Number(value('--runs', quick ? 1 : 3));
const events = Number(value('--events', quick ? 5000 : 100000));
const bytes = Number(value('--bytes', 1024));
const latencyEvents = Number(value('--latency-events', quick ? 500 : 2000));
const latencyRate = Number(value('--latency-rate', 500));
const sfstream = join(build, 'cli', 'sfstream');
const benchRun = join(build, 'bench', 'bench_run');
const scratch = mkdtempSync(join(tmpdir(), 'sfstream-bench-'));
const drainEvent = 'Bench__e';
const latencyEvent = 'BenchLatency__e';

const log = (text) => process.stderr.write(`bench: ${text}\n`);

/** Starts `sfstream emulator` and resolves with its startup JSON (plus the child). */
function startEmulator(tls) {
  // No --state-dir: that would make the emulator persist its org (the whole preloaded backlog)
  // after every quiet spell, work the server would do in the middle of the measurements.
  const argv = ['emulator', '--daily-event-limit', '0', '--client-expiry', '5'];
  if (!tls) argv.push('--http');
  const child = spawn(sfstream, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve({ ...JSON.parse(line), child, tls }));
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${code}`)));
  });
}

/** Calls a bench control endpoint of the emulator (POST with `body`, else GET). */
function control(emu, path, body) {
  const url = new URL(`${emu.base_url}/_emulator/bench/${path}`);
  const send = emu.tls ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: body ? 'POST' : 'GET',
      ca: emu.tls ? readFileSync(emu.ca_file) : undefined,
      headers: { 'Content-Type': 'application/json' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text))
        : reject(new Error(`${path}: HTTP ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

async function preload(emu) {
  const chunk = 10000;
  for (let done = 0; done < events; done += chunk) {
    await control(emu, 'preload', { event: drainEvent, count: Math.min(chunk, events - done), bytes });
  }
}

// The password and the security token travel in the environment (SF_PASSWORD,
// SF_SECURITY_TOKEN), never on a command line where any process on the machine can read them.
const credentials = (emu) => ['--login-url', emu.login_url, '--username', emu.username];
const secrets = (emu) => ({ SF_PASSWORD: emu.password, SF_SECURITY_TOKEN: emu.security_token });

/** How each client is started: [mode of bench_run's stdout, program and arguments]. */
function command(client, emu, channel, count, replay, latency) {
  const lat = latency ? ['--latency'] : [];
  const common = [...credentials(emu), '--channel', channel, '--count', String(count),
    '--replay', String(replay), ...lat];
  const ca = emu.tls ? ['--ca-file', emu.ca_file] : [];
  switch (client) {
    case 'sfstream subscribe':
      return [latency ? 'lines' : 'null', [sfstream, 'subscribe', ...credentials(emu), ...ca,
        '--replay', String(replay), '--count', String(count), channel]];
    case 'bench_drain':
      return ['capture', [join(build, 'bench', 'bench_drain'), ...common, ...ca]];
    case 'raw reader':
      return ['capture', [join(build, 'bench', 'bench_raw_reader'), ...common, ...ca]];
    default:
      return ['capture', [process.execPath, join(here, `${client}_client.mjs`), ...common]];
  }
}

const clients = ['sfstream subscribe', 'bench_drain', 'faye', 'cometd', 'jsforce', 'raw reader'];
const peers = ['faye', 'cometd', 'jsforce'];
const label = {
  'sfstream subscribe': '`sfstream subscribe > /dev/null`',
  bench_drain: 'library alone (`bench_drain`)',
  faye: 'faye',
  cometd: 'CometD JS',
  jsforce: 'jsforce',
  'raw reader': 'raw ceiling reader (no JSON decoding)',
};

/** Runs one measurement; resolves with the figures, or null when the client failed. */
function measure(client, emu, kind) {
  const latency = kind === 'latency';
  const channel = `/event/${latency ? latencyEvent : drainEvent}`;
  const count = latency ? latencyEvents : events;
  const [mode, argv] = command(client, emu, channel, count, latency ? -1 : -2, latency);
  const stderrFile = join(scratch, 'client.err');
  const env = { ...process.env, ...secrets(emu) };
  if (emu.tls) env.NODE_EXTRA_CA_CERTS = emu.ca_file;
  const limit = latency ? Math.ceil(count / latencyRate) + 60 : 300;
  const out = execFileSync(benchRun, ['--stdout', mode, '--stderr', stderrFile, '--timeout', String(limit),
    '--', ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const run = JSON.parse(out.trim().split('\n').pop());
  const child = run.child ?? {};
  const failed = run.exit !== 0 || (mode === 'capture' && !run.child) ||
    (mode === 'lines' && run.lines < count);
  if (failed) {
    const err = readFileSync(stderrFile, 'utf8').slice(-2000);
    log(`${client} (${kind}, ${emu.tls ? 'HTTPS' : 'HTTP'}) failed: exit ${run.exit}\n${err}`);
    return null;
  }
  const first = child.first_us ?? run.first_us;
  const last = child.last_us ?? run.exit_us;
  const result = {
    events_per_s: last > first ? count / ((last - first) / 1e6) : NaN,
    cpu_ms_per_1000: (run.cpu_ms * 1000) / count,
    rss_mib: run.peak_rss_kib / 1024,
    ttfe_ms: first ? (first - run.spawn_us) / 1000 : NaN,
  };
  const lat = child.latency_us ?? run.latency_us;
  if (latency && lat) Object.assign(result, { p50: lat.p50 / 1000, p99: lat.p99 / 1000, max: lat.max / 1000 });
  return result;
}

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

async function soak(emu) {
  const seconds = Number(value('--soak-seconds', 600));
  const rate = 2000;
  log(`soak: sfstream subscribe for ${seconds} s at ${rate} events/s over HTTP`);
  await control(emu, 'pace', { event: 'BenchSoak__e', count: seconds * rate, rate, bytes });
  const child = spawn(sfstream, ['subscribe', ...credentials(emu), '--replay', '-1', '--count',
    String(seconds * rate), '/event/BenchSoak__e'],
  { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...secrets(emu) } });
  const rss = () => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
    } catch {
      return NaN;
    }
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(10000);
  const start = rss();
  log(`soak: RSS at start (after 10 s) ${start.toFixed(1)} MiB`);
  let last = start;
  for (let t = 10; t < seconds - 5 && child.exitCode === null; t += 30) {
    await sleep(30000);
    const now = rss();  // NaN once the client has finished: keep the last real sample
    if (Number.isFinite(now)) last = now;
    log(`soak: ${t + 30} s, RSS ${now.toFixed(1)} MiB, published ${(await control(emu, 'pace')).published}`);
  }
  const end = last;
  child.kill('SIGTERM');
  const line = `soak: ${seconds} s at ${rate} events/s, sfstream subscribe RSS ${start.toFixed(1)} MiB at start, ${end.toFixed(1)} MiB at end`;
  console.log(line);
  return line;
}

const emulators = [];
try {
  log(`build ${build}; ${events} events of ${bytes} bytes, ${runs} run(s); latency ${latencyEvents} at ${latencyRate}/s`);
  for (const tls of [false, true]) emulators.push(await startEmulator(tls));
  if (flag('--soak')) {
    await soak(emulators[0]);
    process.exit(0);
  }
  for (const emu of emulators) {
    log(`preloading ${events} events on ${emu.base_url}`);
    await preload(emu);
  }
  const samples = {};  // `${transport}|${client}` -> {drain: [...], latency: [...]}
  for (let r = 0; r < runs; ++r) {
    for (const emu of emulators) {
      const transport = emu.tls ? 'HTTPS' : 'HTTP';
      const order = clients.map((_, i) => clients[(i + r) % clients.length]);
      for (const kind of ['drain', 'latency']) {
        for (const client of order) {
          if (kind === 'latency') {
            await control(emu, 'pace', { event: latencyEvent, count: latencyEvents, rate: latencyRate, bytes });
          }
          const m = measure(client, emu, kind);
          const key = `${transport}|${client}`;
          samples[key] ??= { drain: [], latency: [] };
          if (m) samples[key][kind].push(m);
          log(`run ${r + 1}/${runs} ${transport} ${kind} ${client}: ${m ? JSON.stringify(Object.fromEntries(
            Object.entries(m).map(([k, v]) => [k, Number(v.toFixed(2))]))) : 'failed'}`);
        }
      }
    }
  }

  // The table: medians, and ratios against the best JavaScript peer of the same transport.
  const metrics = [
    ['events/s', 'drain', 'events_per_s', 'high', 0],
    ['client CPU ms / 1,000 events', 'drain', 'cpu_ms_per_1000', 'low', 2],
    ['peak RSS MiB', 'drain', 'rss_mib', 'low', 1],
    ['time to first event ms', 'drain', 'ttfe_ms', 'low', 0],
    ['latency p50 ms', 'latency', 'p50', 'low', 2],
    ['latency p99 ms', 'latency', 'p99', 'low', 2],
    ['latency max ms', 'latency', 'max', 'low', 2],
  ];
  const med = (transport, client, kind, field) =>
    median((samples[`${transport}|${client}`]?.[kind] ?? []).map((m) => m[field]));
  const fmt = (v, digits) => (Number.isFinite(v) ? v.toLocaleString('en-US', {
    minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
  const rows = [];
  rows.push(`| transport | client | ${metrics.map((m) => m[0]).join(' | ')} |`);
  rows.push(`|---|---|${metrics.map(() => '---:').join('|')}|`);
  for (const transport of ['HTTP', 'HTTPS']) {
    for (const client of clients) {
      const cells = metrics.map(([, kind, field, better, digits]) => {
        const v = med(transport, client, kind, field);
        const peerValues = peers.map((p) => med(transport, p, kind, field)).filter(Number.isFinite);
        const best = better === 'high' ? Math.max(...peerValues) : Math.min(...peerValues);
        const ratio = Number.isFinite(v) && peerValues.length && best > 0 ? ` (${(v / best).toFixed(2)}×)` : '';
        return fmt(v, digits) + ratio;
      });
      rows.push(`| ${transport} | ${label[client]} | ${cells.join(' | ')} |`);
    }
  }
  const ceiling = (transport) => med(transport, 'raw reader', 'drain', 'events_per_s');
  const share = ['HTTP', 'HTTPS'].map((t) =>
    `${t}: sfstream subscribe ${fmt((100 * med(t, 'sfstream subscribe', 'drain', 'events_per_s')) / ceiling(t), 0)} %, ` +
    `library ${fmt((100 * med(t, 'bench_drain', 'drain', 'events_per_s')) / ceiling(t), 0)} % of the ceiling`);
  const table = rows.join('\n');
  console.log(table);
  console.log(share.join('; '));

  const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
  const version = (name) => lock.packages?.[`node_modules/${name}`]?.version ?? '?';
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const doc = `# Benchmark results

Written by \`bash bench/run.sh${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}
(${cpus().length} cores, ${cpu}; Node ${process.versions.node}; faye ${version('faye')},
cometd ${version('cometd')} with cometd-nodejs-client ${version('cometd-nodejs-client')},
jsforce ${version('jsforce')}).

Server: \`sfstream emulator\` (one per transport, on 127.0.0.1), at most 1,000 events per
\`/meta/connect\` reply. Drain: ${events.toLocaleString('en-US')} preloaded platform events of about
${bytes} bytes each, replay -2. Latency: ${latencyEvents.toLocaleString('en-US')} events published at
${latencyRate} per second, replay -1. Medians of ${runs} run(s), clients interleaved. In
parentheses: the ratio to the best of faye, CometD JS and jsforce for that transport (higher is
better for events/s, lower for the rest).

* events/s: between the first and the last event received (\`sfstream subscribe\`: its first
  write to stdout and its exit);
* client CPU and peak RSS: \`wait4\` rusage of the client process, its whole life (start-up,
  login, handshake included);
* time to first event: from process start;
* latency: the event's publication time (wall clock, stamped by the emulator) to its receipt
  (\`sfstream subscribe\`: the line read from its stdout pipe).

${table}

Share of the server's ceiling (the raw reader) in the same run: ${share.join('; ')}.
`;
  if (quick) {
    log('quick mode: bench/RESULTS.md left as it is');
  } else {
    writeFileSync(join(here, 'RESULTS.md'), doc);
    log('wrote bench/RESULTS.md');
  }
} finally {
  for (const emu of emulators) emu.child.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
}
