import { createServer } from "node:net";

/** Ports this process has handed out: the OS may offer a released port again at once. */
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that the OS reports free right now (bound to 0, read, released) and
 * that this process has not handed out before. Needed because mesh/config.ts refuses PORT=0.
 * Without the memory of earlier answers, two calls in a row can return the same port: Linux
 * reuses a just-released ephemeral port, and two services told to listen on it collide.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const a = srv.address();
        srv.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
