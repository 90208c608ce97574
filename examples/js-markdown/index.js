// Renders a Markdown subset to HTML: headings, paragraphs, lists, code
// blocks, **bold**, *italic*, `code` and [links](url). Returns the HTML and
// the outline (the headings), e.g. for a table of contents.
//
//   {"markdown": "# Title\n\nSome *text*."}
//   -> {"html": "<h1 id=\"title\">Title</h1>\n<p>Some <em>text</em>.</p>", "outline": [...]}

const escape = (text) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const slug = (text) =>
  text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "-").replace(/^-|-$/g, "");

function inline(text) {
  return escape(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/\*([^*]+)\*/g, "<em>$1</em>")
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>');
}

export function render(markdown) {
  const html = [];
  const outline = [];
  let paragraph = [];
  let list = null;
  let code = null;
  const flush = () => {
    if (paragraph.length) html.push(`<p>${inline(paragraph.join(" "))}</p>`);
    if (list) html.push(`<ul>${list.map((item) => `<li>${inline(item)}</li>`).join("")}</ul>`);
    paragraph = [];
    list = null;
  };
  for (const line of markdown.split(/\r?\n/)) {
    if (code !== null) {
      if (line.startsWith("```")) {
        html.push(`<pre><code>${escape(code.join("\n"))}</code></pre>`);
        code = null;
      } else code.push(line);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (line.startsWith("```")) {
      flush();
      code = [];
    } else if (heading) {
      flush();
      const level = heading[1].length;
      const id = slug(heading[2]);
      outline.push({ level, text: heading[2], id });
      html.push(`<h${level} id="${id}">${inline(heading[2])}</h${level}>`);
    } else if (item) {
      if (paragraph.length) flush();
      (list ??= []).push(item[1]);
    } else if (line.trim() === "") {
      flush();
    } else {
      if (list) flush();
      paragraph.push(line.trim());
    }
  }
  if (code !== null) html.push(`<pre><code>${escape(code.join("\n"))}</code></pre>`);
  flush();
  return { html: html.join("\n"), outline };
}

export async function main(args) {
  if (typeof args.markdown !== "string") throw new TypeError("args.markdown must be a string");
  const result = render(args.markdown);
  console.log(`rendered ${args.markdown.length} characters, ${result.outline.length} headings`);
  return result;
}
