// Faye (the Node Bayeux client many Salesforce integrations use) draining a channel.
import faye from 'faye';

import { addReplay, fail, makeCounter, parseArgs, soapLogin } from './peer_common.mjs';

const opt = parseArgs();
const { sessionId, instanceUrl } = await soapLogin(opt);
const client = new faye.Client(`${instanceUrl}/cometd/${opt.apiVersion}`, { timeout: 120 });
client.setHeader('Authorization', `Bearer ${sessionId}`);
client.disable('websocket');  // Salesforce serves long polling only
client.addExtension({
  outgoing(message, callback) {
    callback(addReplay(message, opt));
  },
});
const onEvent = makeCounter('faye', opt, () => client.disconnect());
client
  .subscribe(opt.channel, (data) => onEvent(data?.payload?.SentAt__c))
  .then(undefined, (error) => fail(`subscribe failed: ${error?.message ?? error}`));
