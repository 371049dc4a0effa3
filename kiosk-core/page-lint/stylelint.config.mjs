// The kiosk page's styles must work on Chrome 58 (see eslint.config.mjs for why).
// Run from kiosk-core/ as `stylelint -c page-lint/stylelint.config.mjs src/screen/kiosk.css`.
export default {
  plugins: ["stylelint-no-unsupported-browser-features"],
  rules: {
    "plugin/no-unsupported-browser-features": [
      true,
      {
        browsers: ["chrome >= 58"],
        // Partial support counts as missing: the page must not depend on it.
        ignorePartialSupport: false,
        severity: "error",
      },
    ],
  },
};
