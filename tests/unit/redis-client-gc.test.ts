// V8 allocates a function literal assigned straight to a property (`this.reject = (err) => …`) in the
// old generation, as it would a method. ioredis 6 does that for every command, so each command's
// closure context, and the command with its arguments and reply, outlived every young collection
// until the next full one: ~10 MB copied per collection and 30 ms pauses in the transfer bench.
// patches/ioredis+6.0.0.patch (applied by `npm install`) binds those closures to a local first. This
// test fails if the patch is not applied, or an upgraded ioredis brings the pattern back.
//
// The patch also clears a command's timers by assignment, not `delete`: deleting a property turns the
// object into a dictionary, and with a command timeout set (connectRedis sets one) every reply did so,
// about 3% of the service's CPU in the transfer bench's profile.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const PROBE = `
const { Command } = require('ioredis');
const Script = require('ioredis/built/Script').default;
const young = (value) => %InYoungGeneration(value);
const command = new Command('get', ['transfer:1']);
const script = new Script("return redis.call('GET', KEYS[1])", 1);
const scriptCommand = new script.Command('evalsha', [script.sha, 1, 'transfer:1']);
scriptCommand.toWritable({});
const timed = new Command('get', ['transfer:1']);
timed.setTimeout(1000);
timed._clearTimers();
console.log(JSON.stringify({
  timedFastProperties: %HasFastProperties(timed),
  command: young(command),
  commandReject: young(command.reject),
  commandResolve: young(command.resolve),
  scriptCommandReject: young(scriptCommand.reject),
}));
`;

describe('ioredis commands', () => {
  it('are born young, closures included, so a young collection frees them, and keep fast properties once their timers are cleared', () => {
    const run = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', PROBE], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ timedFastProperties: true, command: true, commandReject: true, commandResolve: true, scriptCommandReject: true });
  });
});
