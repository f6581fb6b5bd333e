/**
 * Poison messages that carry no recoverable request id cannot be recorded against a job, so they are moved to
 * the queue's dead-letter queue with the reason attached as message attributes (the DLQ tool shows it), and
 * then deleted from the main queue. The DLQ is found from the source queue's RedrivePolicy.
 */
import type { ContractError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { ReceivedMessage, SqsQueue } from "../shared/queue/sqs.ts";

export class PoisonSink {
  private dlqUrls = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly queue: SqsQueue,
    private readonly log: Logger,
  ) {}

  /** Copies the message to the DLQ with its reason; resolves once it is safe to delete the original. */
  async deadLetter(message: ReceivedMessage, reason: ContractError): Promise<void> {
    const dlqUrl = await this.dlqFor(message.queueUrl);
    if (dlqUrl === undefined) {
      this.log.error({ messageId: message.messageId, code: reason.code, reason: reason.message }, "poison message dropped: the queue has no DLQ");
      return;
    }
    const { failed } = await this.queue.sendBatch(dlqUrl, [
      {
        id: "0",
        body: message.body,
        attributes: {
          failure_code: reason.code,
          failure_reason: reason.message.slice(0, 1000),
          source_message_id: message.messageId,
        },
      },
    ]);
    if (failed.length > 0) throw new Error(`could not dead-letter poison message ${message.messageId}: ${failed[0]!.message}`);
  }

  private dlqFor(queueUrl: string): Promise<string | undefined> {
    let url = this.dlqUrls.get(queueUrl);
    if (url === undefined) {
      url = this.queue.deadLetterQueueUrl(queueUrl);
      url.catch(() => this.dlqUrls.delete(queueUrl));
      this.dlqUrls.set(queueUrl, url);
    }
    return url;
  }
}
