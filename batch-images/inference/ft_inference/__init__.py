"""The adapter-loading proxy in front of vLLM (the AWS inference image)."""
