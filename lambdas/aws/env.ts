/**
 * Reads a required configuration variable (a resource name set by CDK or the local platform). Called
 * at module scope by handlers, so a missing one fails the cold start loudly rather than a request.
 */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Environment variable ${name} is not set`);
  return value;
}
