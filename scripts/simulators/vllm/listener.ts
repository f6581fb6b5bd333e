/**
 * The simulator's listening socket, which can go away and come back on the same port: vLLM's API server exits when
 * its engine dies (clients then get connection refused) and a supervisor starts it again. Transitions run one at a
 * time, in the order asked.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** How long answers already being written (a bare 500, a stream's error line) get before their sockets are cut. */
const DRAIN_MS = 1_000;

export class Listener {
  private listening = false;
  private transition: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: Server,
    private readonly host: string,
    private port: number,
  ) {}

  get boundPort(): number {
    return this.port;
  }

  get isListening(): boolean {
    return this.listening;
  }

  /** Bind (port 0 picks one, kept for later restarts). */
  start(): Promise<void> {
    return this.enqueue(() => this.bind());
  }

  /** Stop accepting, let answers being written finish (up to `drainMs`), then cut every socket. */
  stop(drainMs = DRAIN_MS): Promise<void> {
    return this.enqueue(() => this.unbind(drainMs));
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.transition.then(step);
    this.transition = next.catch(() => undefined);
    return next;
  }

  private bind(): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", reject);
        this.port = (this.server.address() as AddressInfo).port;
        this.listening = true;
        resolve();
      });
    });
  }

  private unbind(drainMs: number): Promise<void> {
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise<void>((resolve, reject) => {
      // Idle keep-alive sockets would otherwise carry new requests to a server that has "exited".
      const sweep = setInterval(() => this.server.closeIdleConnections(), 10);
      const cut = setTimeout(() => this.server.closeAllConnections(), drainMs);
      this.server.close((err) => {
        clearInterval(sweep);
        clearTimeout(cut);
        if (err) reject(err);
        else resolve();
      });
      if (drainMs <= 0) this.server.closeAllConnections();
      else this.server.closeIdleConnections();
    });
  }
}
