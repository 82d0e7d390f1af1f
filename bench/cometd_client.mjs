// The CometD JavaScript client (with cometd-nodejs-client's XMLHttpRequest for Node) draining
// a channel.
import { adapt } from 'cometd-nodejs-client';
import { CometD } from 'cometd';

import { addReplay, fail, makeCounter, parseArgs, soapLogin } from './peer_common.mjs';

adapt();
const opt = parseArgs();
const { sessionId, instanceUrl } = await soapLogin(opt);
const cometd = new CometD();
cometd.unregisterTransport('websocket');  // Salesforce serves long polling only
cometd.unregisterTransport('callback-polling');
cometd.configure({
  url: `${instanceUrl}/cometd/${opt.apiVersion}`,
  requestHeaders: { Authorization: `Bearer ${sessionId}` },
  appendMessageTypeToURL: false,
  maxNetworkDelay: 120000,
});
cometd.registerExtension('replay', { outgoing: (message) => addReplay(message, opt) });
const onEvent = makeCounter('cometd', opt, () => {});
cometd.handshake((reply) => {
  if (!reply.successful) fail(`handshake failed: ${JSON.stringify(reply)}`);
  cometd.subscribe(
    opt.channel,
    (message) => onEvent(message.data?.payload?.SentAt__c),
    (subscribed) => {
      if (!subscribed.successful) fail(`subscribe failed: ${JSON.stringify(subscribed)}`);
    },
  );
});
