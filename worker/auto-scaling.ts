/**
 * The AutoScalingPort over the AWS SDK: DescribeAutoScalingGroups for the group's desired capacity and in-service
 * instances, SetInstanceProtection on this instance only. IAM: SetInstanceProtection is allowed on this group's
 * ARN; DescribeAutoScalingGroups has no resource-level permissions, so it needs `Resource: "*"`.
 */
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SetInstanceProtectionCommand,
} from "@aws-sdk/client-auto-scaling";
import { FleetError, isTransientAwsError, type FleetErrorOptions } from "../shared/errors.ts";
import type { AutoScalingPort, GroupView } from "./scale-in.ts";

export interface AwsAutoScalingOptions {
  region: string;
  groupName: string;
  instanceId: string;
  /** Endpoint override (tests). Unset: real AWS. */
  endpoint?: string;
  /** Static credentials (tests). Unset: the SDK's default chain (the instance role on EC2). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** An Auto Scaling call failed. Throttling, 5xx and network errors are retryable; a missing group is not. */
export class AutoScalingError extends FleetError {
  constructor(
    readonly code: "AUTOSCALING_GROUP_NOT_FOUND" | "AUTOSCALING_CALL_FAILED",
    message: string,
    readonly retryable: boolean,
    options: FleetErrorOptions = {},
  ) {
    super(message, options);
  }
}

export class AwsAutoScaling implements AutoScalingPort {
  private readonly client: AutoScalingClient;

  constructor(private readonly o: AwsAutoScalingOptions) {
    this.client = new AutoScalingClient({
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
      // Bounded calls: the first protection is awaited before the worker starts taking work.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
    });
  }

  async describeGroup(signal?: AbortSignal): Promise<GroupView> {
    const out = await this.call("DescribeAutoScalingGroups", () =>
      this.client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [this.o.groupName] }), { abortSignal: signal }),
    );
    const group = out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === this.o.groupName);
    if (group === undefined) throw new AutoScalingError("AUTOSCALING_GROUP_NOT_FOUND", `Auto Scaling group ${this.o.groupName} not found`, false);
    const inService = (group.Instances ?? [])
      .filter((i) => i.LifecycleState === "InService" && i.InstanceId !== undefined)
      .map((i) => ({ id: i.InstanceId!, availabilityZone: i.AvailabilityZone ?? "" }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { desired: group.DesiredCapacity ?? 0, inService };
  }

  async setProtected(protect: boolean, signal?: AbortSignal): Promise<void> {
    await this.call("SetInstanceProtection", () =>
      this.client.send(
        new SetInstanceProtectionCommand({ AutoScalingGroupName: this.o.groupName, InstanceIds: [this.o.instanceId], ProtectedFromScaleIn: protect }),
        { abortSignal: signal },
      ),
    );
  }

  close(): void {
    this.client.destroy();
  }

  private async call<T>(action: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw toAutoScalingError(action, err);
    }
  }
}

/** Any failed Auto Scaling call. Client faults other than throttling (AccessDenied, ValidationError) will not pass on a retry. */
export function toAutoScalingError(action: string, err: unknown): AutoScalingError {
  const e = (err ?? {}) as { name?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: number }; message?: unknown };
  const name = typeof e.name === "string" ? e.name : "Error";
  const retryable = e.$fault !== "client" || isTransientAwsError(err);
  return new AutoScalingError("AUTOSCALING_CALL_FAILED", `${action} failed: ${name}: ${String(e.message ?? "")}`, retryable, {
    cause: err,
    statusCode: e.$metadata?.httpStatusCode,
    provider: "autoscaling",
  });
}
