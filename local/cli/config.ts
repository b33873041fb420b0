import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DEFAULT_PREFIX, physicalName, TABLE_ENV, type TableId } from "../../infra/resources/definitions.ts";

/** Where the admin commands find the platform's tables. */
export interface AdminTarget {
  readonly describe: string;
  readonly tables: Record<TableId, string>;
}

export const LOCAL_ENDPOINT = "http://localhost:4566";

/**
 * Resolution order: table names from the environment (FILES_TABLE, API_KEYS_TABLE...), else the
 * outputs of a deployed stack (`--stack`), else the local platform (LocalStack on localhost:4566 with
 * the default prefix).
 */
export async function resolveTarget(options: { stack?: string; prefix?: string }): Promise<AdminTarget> {
  const prefix = options.prefix ?? process.env.FT_PREFIX ?? DEFAULT_PREFIX;
  const tables = {} as Record<TableId, string>;
  const ids = Object.keys(TABLE_ENV) as TableId[];
  if (options.stack) {
    const cfn = new CloudFormationClient({});
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: options.stack }));
    const outputs = Stacks?.[0]?.Outputs ?? [];
    for (const id of ids) {
      const output = outputs.find((o) => o.Description === TABLE_ENV[id]);
      if (!output?.OutputValue) throw new Error(`stack ${options.stack} has no output for ${TABLE_ENV[id]}`);
      tables[id] = output.OutputValue;
    }
    return { describe: `stack ${options.stack}`, tables };
  }
  for (const id of ids) tables[id] = process.env[TABLE_ENV[id]] ?? physicalName(prefix, id);
  if (!process.env.AWS_ENDPOINT_URL && !ids.some((id) => process.env[TABLE_ENV[id]])) {
    // No AWS target named at all: the local platform.
    process.env.AWS_ENDPOINT_URL = LOCAL_ENDPOINT;
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "test";
    process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  }
  return {
    describe: process.env.AWS_ENDPOINT_URL
      ? `local platform at ${process.env.AWS_ENDPOINT_URL}`
      : "AWS (from environment)",
    tables,
  };
}
