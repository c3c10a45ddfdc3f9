// Test order: unit, integration, the Go agent's checks (test/unit/go-agent.test.ts: in a whole run they run in the
// background from the start, so its file waits for them as late as it can), e2e, then the replay of every history
// the others produced (it must be last).
import Sequencer from '@jest/test-sequencer';

const BaseSequencer = Sequencer.default ?? Sequencer;
const rank = (p) =>
  p.includes('/test/replay/') ? 4 : p.includes('/test/e2e/') ? 3 : p.endsWith('/test/unit/go-agent.test.ts') ? 2 : p.includes('/test/integration/') || p.includes('/test/soak/') ? 1 : 0;

export default class OrchSequencer extends BaseSequencer {
  sort(tests) {
    return [...tests].sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
