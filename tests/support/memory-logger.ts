// A pino logger that keeps every line in memory, so tests can assert on what was logged
// (and that no whole phone number ever was).
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface MemoryLogger {
  readonly logger: Logger;
  readonly lines: string[];
  text(): string;
}

export function memoryLogger(level: pino.LevelWithSilent = 'debug'): MemoryLogger {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.length > 0) lines.push(line);
      done();
    },
  });
  return { logger: pino({ level }, sink), lines, text: () => lines.join('\n') };
}
