// The kiosk page's script must run on Chrome 58: the factory Android System WebView of an
// Android 8 tablet, never updated on a tablet provisioned without a Google account.
// Run from kiosk-core/ as `eslint -c page-lint/eslint.config.mjs src/screen/kiosk.js`
// (scripts/lint-page.sh).
import js from "@eslint/js";
import compat from "eslint-plugin-compat";
import esX from "eslint-plugin-es-x";
import globals from "globals";

const CHROME = "chrome >= 58";

export default [
  js.configs.recommended,
  compat.configs["flat/recommended"],
  esX.configs["flat/restrict-to-es2017"],
  {
    languageOptions: {
      // Chrome 58 parses ES2017 (async functions arrived in 55); anything newer is a syntax
      // error there, so it is one here too.
      ecmaVersion: 2017,
      sourceType: "script",
      globals: { ...globals.browser },
    },
    settings: {
      browsers: [CHROME],
      // Report every call of a too-new method name (e.g. `.flat()`), not only those on values
      // known to be arrays: the page has no type information to offer.
      "es-x": { aggressive: true },
    },
    rules: {
      // ES2017 pieces that Chrome 58 lacks.
      "es-x/no-atomics": "error",
      "es-x/no-shared-array-buffer": "error",
      // DOM methods on elements: eslint-plugin-compat only sees globals (fetch, EventSource,
      // document.x), not methods called on an element held in a variable; these are the
      // element and node methods newer than Chrome 58 that a page like this one reaches for.
      "no-restricted-properties": [
        "error",
        ...[
          ["replaceChildren", 86],
          ["toggleAttribute", 69],
          ["getAttributeNames", 61],
          ["scrollTo", 61],
          ["scrollBy", 61],
          ["requestSubmit", 76],
          ["showPicker", 99],
          ["checkVisibility", 105],
          ["inert", 102],
          ["showPopover", 114],
          ["togglePopover", 114],
          ["setHTMLUnsafe", 124],
        ].map(([property, since]) => ({
          property,
          message: `Chrome ${since}+; the kiosk page must run on Chrome 58.`,
        })),
      ],
    },
  },
];
