// A TCP proxy for tests: lets one client's connection to a server be cut and restored while the
// others carry on, or have the server's replies lost while its requests still arrive.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Proxy {
  readonly port: number;
  cut(): void;
  restore(): void;
  /** From now on the server's bytes are dropped (as on a link that fails one way) until `cut`. */
  loseReplies(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let refusing = false;
  let losingReplies = false;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!losingReplies) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    cut() {
      refusing = true;
      losingReplies = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    loseReplies() {
      losingReplies = true;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
