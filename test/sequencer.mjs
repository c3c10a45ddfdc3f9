// Test order: unit, integration, e2e, then the replay of every history the others produced (it must be last).
import Sequencer from '@jest/test-sequencer';

const BaseSequencer = Sequencer.default ?? Sequencer;
const rank = (p) => (p.includes('/test/replay/') ? 3 : p.includes('/test/e2e/') ? 2 : p.includes('/test/integration/') || p.includes('/test/soak/') ? 1 : 0);

export default class OrchSequencer extends BaseSequencer {
  sort(tests) {
    return [...tests].sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
