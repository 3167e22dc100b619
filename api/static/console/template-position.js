// Where a template error lies in the editor's text. The API reports line and column
// within one entry's batchRowTemplate (or within the whole text for a plain template);
// an object template is JSON, so the entry's string is found and its escapes walked.

function skipString(text, i) {
  // i at an opening quote; answers the index after the closing quote.
  for (let j = i + 1; j < text.length; j += 1) {
    if (text[j] === "\\") j += 1;
    else if (text[j] === '"') return j + 1;
  }
  return -1;
}

// The offset, in the JSON text, of the string literal holding `name` inside the
// object that is the value of key `entry` (top level), or -1.
function findMember(text, entry, name) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return -1;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || !(entry in parsed)) return -1;
  let depth = 0;
  let entryStart = -1;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(text, i);
      if (end < 0) return -1;
      const literal = text.slice(i, end);
      if (depth === 1 && entryStart < 0 && JSON.parse(literal) === entry && /^\s*:/.test(text.slice(end))) entryStart = end;
      else if (depth === 2 && entryStart >= 0 && JSON.parse(literal) === name && /^\s*:/.test(text.slice(end))) {
        const valueStart = text.indexOf('"', end);
        return valueStart;
      }
      i = end - 1;
    } else if (c === "{" || c === "[") depth += 1;
    else if (c === "}" || c === "]") {
      depth -= 1;
      if (depth === 1 && entryStart >= 0) return -1;
    }
  }
  return -1;
}

// Offset in `text` of (line, column) of the template source of `entry` (null: plain template).
export function entryOffset(text, entry, line, column) {
  let start = -1;
  if (entry !== null && entry !== undefined) {
    start = findMember(text, entry, "batchRowTemplate");
    if (start < 0) return null;
  }
  if (start < 0) {
    // A plain template: the text itself.
    let offset = 0;
    for (let l = 1; l < line; l += 1) {
      const next = text.indexOf("\n", offset);
      if (next < 0) return null;
      offset = next + 1;
    }
    return Math.min(offset + column - 1, text.length);
  }
  // Walk the JSON string literal, counting decoded characters.
  let l = 1;
  let c = 1;
  for (let i = start + 1; i < text.length && text[i] !== '"'; i += 1) {
    if (l === line && c === column) return i;
    let decoded = text[i];
    if (decoded === "\\") {
      const esc = text[i + 1];
      decoded = esc === "n" ? "\n" : "x";
      i += esc === "u" ? 5 : 1;
    }
    if (decoded === "\n") { l += 1; c = 1; } else c += 1;
  }
  return start + 1;
}
