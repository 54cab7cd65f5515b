import { describe, expect, it } from 'vitest';
import { ADMIN_PATHS } from '../../src/ops/adminPage.js';
import { adminBanner, adminTokenOutput } from '../../src/ops/banner.js';
import { OPS_PATHS } from '../../src/ops/routes.js';

const url = 'http://localhost:4000';

describe('the start banner', () => {
  it('gives each operator address a line of its own, label then URL, aligned as the others', () => {
    const { lines, tokenLine } = adminBanner(url, { token: 't'.repeat(32), generated: false });
    expect(lines.trimEnd().split('\n')).toEqual([
      `  Metrics:  ${url}${OPS_PATHS.metrics} (Authorization: Bearer <ADMIN_TOKEN>)`,
      `  Ready:    ${url}${OPS_PATHS.readyz}`,
      `  Admin:    ${url}${ADMIN_PATHS.page} (token: ADMIN_TOKEN)`,
    ]);
    expect(tokenLine).toBeNull();
  });

  it('names the separate metrics listener, and puts a generated token only in its own line', () => {
    const token = 'x'.repeat(32);
    const { lines, tokenLine } = adminBanner(
      url,
      { token, generated: true },
      'http://0.0.0.0:9464/metrics',
    );
    expect(lines).toContain('  Metrics:  http://0.0.0.0:9464/metrics\n');
    expect(lines).not.toContain(token);
    expect(tokenLine).toContain(`${ADMIN_PATHS.page}#token=${token}`);
  });

  it('shows a generated token on a terminal, on stderr in development, and nowhere in production', () => {
    expect(adminTokenOutput(true, true)).toBe('stdout');
    expect(adminTokenOutput(false, false)).toBe('stderr');
    expect(adminTokenOutput(false, true)).toBe('nowhere');
  });
});
