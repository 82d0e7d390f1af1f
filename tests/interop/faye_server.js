// A Faye (Bayeux) server for the interop test: long-polling on 127.0.0.1, mounted where the
// sfstream client posts (/cometd/<api_version>), with a small control route the test drives.
//
//   node faye_server.js [mount]        (faye is found through NODE_PATH)
//
// Prints {"port":N} on one line once listening. Control routes (GET):
//   /control/publish?channel=/topic/X&name=N  publishes a PushTopic-shaped message (no replayId)
//                                             from a Faye client in this process; answers "ok"
//   /control/forget                           destroys every client that subscribed, so its next
//                                             message gets 401::Unknown client (advice handshake)
//   /control/stats                            {"handshakes":N,"subscribed":[...]} as JSON
// The server exits when stdin closes, so it never outlives the test that started it.
'use strict';

const http = require('http');
const faye = require('faye');

const mount = process.argv[2] || '/cometd/59.0';
const adapter = new faye.NodeAdapter({ mount: mount, timeout: 2 });
const subscribers = new Map();  // clientId -> channels
let handshakes = 0;

adapter.on('handshake', () => { handshakes += 1; });
adapter.on('subscribe', (clientId, channel) => {
  if (!subscribers.has(clientId)) subscribers.set(clientId, new Set());
  subscribers.get(clientId).add(channel);
});
adapter.on('unsubscribe', (clientId, channel) => {
  if (subscribers.has(clientId)) subscribers.get(clientId).delete(channel);
});
adapter.on('disconnect', (clientId) => { subscribers.delete(clientId); });

const publisher = adapter.getClient();

function answer(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function control(req, res, url) {
  if (url.pathname === '/control/publish') {
    const channel = url.searchParams.get('channel') || '/topic/Interop';
    const name = url.searchParams.get('name') || '';
    const data = {
      event: { type: 'created', createdDate: new Date().toISOString() },
      sobject: { Id: '001000000000001AAA', Name: name },
    };
    publisher.publish(channel, data).then(
      () => answer(res, 200, 'ok'),
      (error) => answer(res, 500, 'publish failed: ' + (error && error.message)));
    return;
  }
  if (url.pathname === '/control/forget') {
    const engine = adapter._server._engine;
    const ids = Array.from(subscribers.keys());
    subscribers.clear();
    for (const id of ids) engine.destroyClient(id);
    answer(res, 200, String(ids.length));
    return;
  }
  if (url.pathname === '/control/stats') {
    const subscribed = [];
    for (const channels of subscribers.values()) for (const c of channels) subscribed.push(c);
    answer(res, 200, JSON.stringify({ handshakes: handshakes, subscribed: subscribed }));
    return;
  }
  answer(res, 404, 'not found');
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname.startsWith('/control/')) return control(req, res, url);
  adapter.handle(req, res);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
