// What the JavaScript benchmark clients share: their arguments, a SOAP login() against the
// org (the same call every Salesforce client makes), the event counting and the one JSON
// report line on stdout that bench/run.mjs reads.
//
//   SF_PASSWORD=P SF_SECURITY_TOKEN=T node bench/<client>.mjs --login-url URL --username U ...
//   (--password and --security-token are taken too, but put secrets on no command line)
//        --channel CH --count N [--replay -2] [--latency]
//
// HTTPS trusts the emulator's CA through NODE_EXTRA_CA_CERTS (set by the runner).

const startUs = nowUs();

/** Wall-clock microseconds since the Unix epoch, with sub-millisecond resolution. */
export function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export function parseArgs(argv = process.argv.slice(2)) {
  const opt = { replay: '-2', apiVersion: '64.0', latency: false, securityToken: '' };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--latency') {
      opt.latency = true;
      continue;
    }
    const name = a.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    opt[name] = argv[++i];
  }
  opt.password ??= process.env.SF_PASSWORD;
  if (!opt.securityToken) opt.securityToken = process.env.SF_SECURITY_TOKEN ?? '';
  for (const required of ['loginUrl', 'username', 'password', 'channel', 'count']) {
    if (!opt[required]) fail(`give --${required.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  }
  opt.count = Number(opt.count);
  opt.replay = Number(opt.replay);
  return opt;
}

export function fail(why) {
  process.stderr.write(`bench peer: ${why}\n`);
  process.exit(1);
}

function xmlEscape(text) {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/** SOAP partner login(): returns {sessionId, instanceUrl}. */
export async function soapLogin(opt) {
  const envelope =
    '<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" ' +
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">' +
    '<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>' +
    xmlEscape(opt.username) +
    '</n1:username><n1:password>' +
    xmlEscape(opt.password + opt.securityToken) +
    '</n1:password></n1:login></env:Body></env:Envelope>';
  const res = await fetch(`${opt.loginUrl}/services/Soap/u/${opt.apiVersion}`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset=UTF-8', SOAPAction: 'login' },
    body: envelope,
  });
  const text = await res.text();
  const sessionId = /<sessionId>([^<]*)<\/sessionId>/.exec(text)?.[1];
  const serverUrl = /<serverUrl>([^<]*)<\/serverUrl>/.exec(text)?.[1];
  if (!res.ok || !sessionId || !serverUrl) fail(`the SOAP login failed (HTTP ${res.status})`);
  return { sessionId, instanceUrl: new URL(serverUrl).origin };
}

/**
 * Counts events; `onEvent(sentAtText)` is called with the event's SentAt__c. Calls `done()`
 * once `count` events arrived, after printing the report.
 */
export function makeCounter(client, opt, done) {
  let received = 0;
  let firstUs = 0;
  let lastUs = 0;
  const latencies = opt.latency ? [] : null;
  return function onEvent(sentAt) {
    const at = nowUs();
    if (received === 0) firstUs = at;
    lastUs = at;
    if (latencies && sentAt) latencies.push(at - Number(sentAt));
    if (++received !== opt.count) return;
    const usage = process.resourceUsage();
    const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
    const seconds = (lastUs - firstUs) / 1e6;
    const report = {
      client,
      events: received,
      start_us: startUs,
      first_us: firstUs,
      last_us: lastUs,
      events_per_s: seconds > 0 ? Math.round(received / seconds) : 0,
      cpu_ms_per_1000: Number(((cpuMs * 1000) / received).toFixed(2)),
      peak_rss_mib: Number((usage.maxRSS / 1024).toFixed(1)),
    };
    if (latencies) {
      latencies.sort((a, b) => a - b);
      const pick = (p) => latencies[Math.min(latencies.length - 1, Math.round(p * (latencies.length - 1)))];
      report.latency_us = { p50: pick(0.5), p99: pick(0.99), max: latencies[latencies.length - 1] };
    }
    process.stdout.write(JSON.stringify(report) + '\n', () => {
      done();
      process.exit(0);
    });
  };
}

/** A Bayeux extension body that adds the replay map to /meta/subscribe (Salesforce's ext.replay). */
export function addReplay(message, opt) {
  if (message.channel === '/meta/subscribe') {
    message.ext = message.ext || {};
    message.ext.replay = { [opt.channel]: opt.replay };
  }
  return message;
}
