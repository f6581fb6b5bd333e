/**
 * Cuts a byte stream into lines as it arrives. Each line keeps its own terminator ("\n", so "\r\n" too), so the
 * lines concatenated are the stream byte for byte. Memory is one chunk plus one line: a line longer than
 * `maxLineBytes` ends the stream with LineTooLongError instead of growing a buffer.
 */
const NEWLINE = 0x0a;

export class LineTooLongError extends Error {
  readonly code = "line_too_long";
  constructor(
    readonly line: number,
    readonly maxLineBytes: number,
  ) {
    super(`line ${line} is longer than ${maxLineBytes} bytes`);
  }
}

export async function* splitLines(source: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  for await (const chunk of source) {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      const tail = chunk.subarray(start, nl + 1);
      line++;
      if (pendingBytes + tail.length > maxLineBytes) throw new LineTooLongError(line, maxLineBytes);
      // A copy: a subarray would keep the whole chunk alive for as long as the line is held.
      yield pending.length === 0 ? Buffer.from(tail) : Buffer.concat([...pending, tail]);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > maxLineBytes) throw new LineTooLongError(line + 1, maxLineBytes);
      pending.push(Buffer.from(chunk.subarray(start)));
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
