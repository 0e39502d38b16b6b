"""Browser checks: Playwright driving a Chromium installed on the machine (Debian's
`chromium` by default), one browser per browser worker, a fresh context per run."""
