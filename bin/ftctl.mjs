#!/usr/bin/env node
// ftctl runs from the repository's TypeScript sources through tsx, so it needs no build step.
import { register } from "tsx/esm/api";

// Node 20 is supported here; the SDK's notice about its future Node 22 floor is noise for ftctl users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
const { main } = await import("../local/cli/ftctl.ts");
process.exitCode = await main(process.argv.slice(2));
