/**
 * The Go agent binary the integration tests run: test/suite-setup.ts resolves it once (infra/agent-binary.ts, a
 * cached `go build` of agent/) and exports it as ORCH_AGENT_BIN. Tests spawn it directly, never through a Node
 * wrapper, so a signal a test sends (SIGKILL in the kill tests) reaches the agent itself.
 */
import { ORCH_AGENT_BIN_ENV } from '../../infra/agent-binary';

export function agentBinary(): string {
  const bin = process.env[ORCH_AGENT_BIN_ENV];
  if (!bin) throw new Error(`${ORCH_AGENT_BIN_ENV} is not set: run the integration tests through jest (test/suite-setup.ts resolves the agent), or set it to a built orch-agent`);
  return bin;
}
