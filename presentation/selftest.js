// Loaded by the deck; does nothing unless the URL has ?selftest. Then it records every error
// (script errors, failed assets, console.error and console.warn), walks every slide, records
// the slides whose content does not fit, and writes the findings as JSON into the page, where
// tests/project/test_slides.py reads them from Chromium's --dump-dom.
(function () {
  if (!/[?&]selftest\b/.test(location.search)) return;
  const findings = { errors: [], overflow: [], slides: 0, done: false };
  window.__selftest = findings;
  window.addEventListener("error", (event) => {
    const target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      findings.errors.push(`failed to load ${target.src || target.href}`);
    } else {
      findings.errors.push(`script error: ${event.message}`);
    }
  }, true);
  window.addEventListener("unhandledrejection", (event) => {
    findings.errors.push(`unhandled rejection: ${event.reason}`);
  });
  for (const level of ["error", "warn"]) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      findings.errors.push(`console.${level}: ${args.join(" ")}`);
      original(...args);
    };
  }

  function tooBig(slide, index) {
    const height = Reveal.getConfig().height;
    const width = Reveal.getConfig().width;
    if (slide.scrollHeight > height + 1 || slide.scrollWidth > width + 1) {
      return `slide ${index}: ${slide.scrollWidth}x${slide.scrollHeight} > ${width}x${height}`;
    }
    for (const code of slide.querySelectorAll("pre code, table")) {
      if (code.scrollHeight > code.clientHeight + 1 || code.scrollWidth > code.clientWidth + 1) {
        return `slide ${index}: a ${code.tagName.toLowerCase()} is cut off ` +
          `(${code.scrollWidth}x${code.scrollHeight} in ${code.clientWidth}x${code.clientHeight})`;
      }
    }
    return null;
  }

  function report() {
    findings.done = true;
    const out = document.createElement("pre");
    out.id = "selftest-result";
    out.textContent = JSON.stringify(findings);
    document.body.appendChild(out);
  }

  function whenReady(then) {
    if (window.Reveal && Reveal.isReady()) then();
    else setTimeout(() => whenReady(then), 50);
  }

  window.addEventListener("load", () => {
    whenReady(() => {
      const slides = Reveal.getSlides();
      findings.slides = slides.length;
      slides.forEach((slide, index) => {
        const where = Reveal.getIndices(slide);
        Reveal.slide(where.h, where.v);
        Reveal.layout();
        const problem = tooBig(slide, index + 1);
        if (problem) findings.overflow.push(problem);
      });
      Reveal.slide(0, 0);
      setTimeout(report, 200);
    });
  });
})();
