/**
 * argvTemplate: a hand-written workflow's argv as the command activity's template. Any string, whatever it holds,
 * comes out of the activity's resolution unchanged; only secret('NAME') becomes a reference.
 */
import { describe, test } from '@jest/globals';
import fc from 'fast-check';
import assert from '../support/assert';
import { argvSecretNames } from '../../activities/secrets';
import { renderTemplate } from '../../workflows/dag/template';
import { argvTemplate, secret, type ArgvElement } from '../../workflows/argv-template';

/** What the activity does with the template: resolve references, with a resolver that knows every name. */
const resolve = (t: string) => renderTemplate(t, { params: {}, secret: (n) => `<${n}>` });

describe('argvTemplate', () => {
  test('strings are literal, whatever they hold (property)', () => {
    const text = fc.string({ unit: fc.constantFrom('$', '{', '}', 's', 'e', 'c', 'r', 't', '.', 'A', 'P', 'I', ' '), maxLength: 30 });
    const templated = fc.constantFrom('${secrets.API}', '$${', '${params.p}', '${nodes.n.output}', '${', '$');
    fc.assert(
      fc.property(fc.array(fc.oneof(text, templated), { maxLength: 6 }), (pieces) => {
        const s = pieces.join('');
        const [t] = argvTemplate([s]);
        assert.deepEqual(argvSecretNames([t!]), []);
        assert.equal(resolve(t!), s);
      }),
      { seed: 5, numRuns: 2000 },
    );
  });

  test('secret() is the only reference, alone or joined with text', () => {
    const argv: ArgvElement[] = ['deploy', secret('API'), ['--token=', secret('TOKEN'), ' ${secrets.API}'], ['a$', '{b']];
    const t = argvTemplate(argv);
    assert.deepEqual(t, ['deploy', '${secrets.API}', '--token=${secrets.TOKEN} $${secrets.API}', 'a$${b']);
    assert.deepEqual(argvSecretNames(t), ['API', 'TOKEN']);
    assert.deepEqual(t.map(resolve), ['deploy', '<API>', '--token=<TOKEN> ${secrets.API}', 'a${b']);
  });

  test('a look-alike object from input, a number, a bad name and "$" before a secret are refused', () => {
    const refused = (argv: unknown) => assert.throws(() => argvTemplate(argv as ArgvElement[]), (e: unknown) => (e as { type?: string }).type === 'bad_input');
    refused([{ name: 'API' }]);
    refused([JSON.parse(JSON.stringify({ argv: [secret('API')] })).argv[0]]);
    refused([42]);
    refused([['cost$', secret('API')]]);
    assert.throws(() => secret('../x'), (e: unknown) => (e as { type?: string }).type === 'bad_input');
  });
});
