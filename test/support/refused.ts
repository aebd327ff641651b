import * as net from 'node:net';

/**
 * A loopback port no server listens on, and none can take by chance: port 1 is below the range the system
 * hands out for `listen(0)`, so a server another test starts meanwhile never lands there (a port freed by
 * `freePort()` can be taken by a parallel test before it is used, and then it answers). Checked here: a
 * connection to it is refused.
 */
export async function refusedPort(): Promise<number> {
  const port = 1;
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
  if (!refused) throw new Error(`something listens on 127.0.0.1:${port}: the tests need a port that refuses connections`);
  return port;
}
