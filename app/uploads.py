"""Say in a sentence on the page why the browser refused an upload.

A file larger than a ``st.file_uploader``'s ``max_upload_size`` never reaches the server: the
browser refuses it and shows a red chip whose reason ("File must be 50.0MB or smaller.") is only
in a tooltip. The page cannot answer a file it never got, so :func:`refused_notice` puts a small
script beside the uploader that watches for refused chips and writes the sentence under it.
(A wrong type is no longer refused by the browser: the uploaders take any file and the server
answers, see ``model_store.import_upload``.)
"""

from __future__ import annotations

import json

import streamlit as st

from app.teacher import css_class

# {name} and {size} are filled in by the browser, the size as the chip beside shows it (e.g.
# "3.1 MB", in the browser's decimal megabytes).
TOO_LARGE = "{name} is {size}, more than the {limit} MB limit, so the browser did not send it."
# The chip of a file the browser refused for another reason (its tooltip's text follows).
REFUSED = "{name} was refused by the browser: "
POLL_MS = 300  # how often the script looks at the uploader's chips

_SCRIPT = """<div id=%(box)s class="rir-refused" role="alert"></div>
<style>
.rir-refused { color: rgb(125, 53, 59); background: rgba(255, 43, 43, 0.09);
  border-radius: 0.5rem; padding: 1rem; margin-top: 0.25rem; }
.rir-refused:empty { display: none; }
</style>
<script>
(() => {
  const box = %(box)s, owner = %(owner)s, limit = %(limit)d;
  const tooLarge = %(too_large)s, refused = %(refused)s;
  window.rirRefused ??= {};
  clearInterval(window.rirRefused[box]);  // a rerun's script replaces the last one
  const fill = (text, name, size) => text.replace("{name}", name).replace("{size}", size)
    .replace("{limit}", String(limit));
  window.rirRefused[box] = setInterval(() => {
    const out = document.getElementById(box);
    if (!out) return;
    const chips = document.querySelectorAll(
      `.${owner} [data-testid="stFileChip"][aria-invalid="true"]`);
    const lines = [...chips].map((chip) => {
      const name = chip.querySelector('[data-testid="stFileChipName"]')?.textContent ?? "A file";
      const reason = chip.querySelector('[role="alert"]')?.textContent ?? "";
      // The chip's label is "NAME, SIZE" with SIZE as "3.1MB": the sentence spaces the unit.
      const label = chip.getAttribute("aria-label") ?? "";
      const size = label.slice(label.lastIndexOf(",") + 1).trim()
        .replace(/([0-9.])([A-Za-z])/, "$1 $2");
      if (/or smaller/i.test(reason) && size) return fill(tooLarge, name, size);
      return fill(refused, name, size) + reason.replace(/^Error:\\s*/, "");
    });
    const text = lines.join(" ");
    if (out.textContent !== text) out.textContent = text;
  }, %(poll)d);
})();
</script>"""


def refused_notice(uploader_key: str, limit_mb: int) -> None:
    """Draw, where it is called (under the uploader with ``uploader_key``), one sentence per
    file the browser refused; nothing while there is none."""
    box = "rir-refused-" + css_class(uploader_key)
    script = _SCRIPT % {
        "box": json.dumps(box),
        "owner": json.dumps(css_class(uploader_key)),
        "limit": limit_mb,
        "too_large": json.dumps(TOO_LARGE),
        "refused": json.dumps(REFUSED),
        "poll": POLL_MS,
    }
    st.html(script, unsafe_allow_javascript=True)
