// jsforce (its own SOAP login and its Faye-based streaming client with the Replay extension)
// draining a channel.
import jsforce from 'jsforce';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';

import { fail, makeCounter, parseArgs } from './peer_common.mjs';

const opt = parseArgs();
const conn = new jsforce.Connection({ loginUrl: opt.loginUrl, version: opt.apiVersion });
await conn.login(opt.username, opt.password + opt.securityToken).catch((e) => fail(`login failed: ${e.message}`));
const client = conn.streaming.createClient([new StreamingExtension.Replay(opt.channel, opt.replay)]);
const onEvent = makeCounter('jsforce', opt, () => client.disconnect());
client
  .subscribe(opt.channel, (data) => onEvent(data?.payload?.SentAt__c))
  .then(undefined, (error) => fail(`subscribe failed: ${error?.message ?? error}`));
