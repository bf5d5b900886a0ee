// Headless Debian Chromium driven by playwright-core (no browser download), as root in CI.
// playwright gives every launch a fresh temporary profile of its own.
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.CRYO_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
