import * as net from 'node:net';

/**
 * A TCP port free on `host` right now (the system picks it: listen on port 0, read it, close). For
 * programs that need a number before they listen (HAProxy's configuration, a child process's flags).
 * Another process may take it before it is used: callers that can listen on 0 themselves should.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
