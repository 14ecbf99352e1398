"""The report's style sheet, inlined into every page (the Content-Security-Policy allows inline
styles only)."""

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 72rem;
       padding: 1rem 1.5rem 3rem; color: #1d2125; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
h3 { font-size: .95rem; margin: 1rem 0 .35rem; color: #444; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; white-space: pre; border-radius: 4px; }
table { border-collapse: collapse; margin: .25rem 0; }
th, td { text-align: left; vertical-align: top; padding: .2rem .6rem; border-bottom: 1px solid #e4e6e8; }
td pre { margin: 0; padding: .2rem .4rem; }
.meta { color: #555; margin-top: 0; }
.summary { display: flex; flex-wrap: wrap; gap: .5rem; list-style: none; padding: 0; }
.summary li { border: 1px solid #d0d4d8; border-radius: 4px; padding: .2rem .6rem; }
.summary b { font-size: 1.1rem; }
section.experiment { border: 1px solid #d0d4d8; border-left-width: 6px; border-radius: 4px;
                     padding: .8rem 1rem; margin: 1rem 0; }
.verdict { display: inline-block; font-weight: 600; text-transform: uppercase; font-size: .8rem;
           padding: .05rem .45rem; border-radius: 3px; margin-right: .5rem; color: #fff; background: #6c757d; }
.verdict-matched .verdict, .verdict.verdict-matched { background: #1a7f37; }
.verdict-changed .verdict, .verdict.verdict-changed { background: #bc4c00; }
.verdict-failed .verdict, .verdict.verdict-failed, .verdict-error .verdict, .verdict.verdict-error,
.verdict-timeout .verdict, .verdict.verdict-timeout { background: #cf222e; }
.verdict-missing .verdict, .verdict.verdict-missing,
.verdict-new .verdict, .verdict.verdict-new { background: #8250df; }
.verdict-recorded .verdict, .verdict.verdict-recorded { background: #0969da; }
.verdict-unstable .verdict, .verdict.verdict-unstable { background: #9a6700; }
section.verdict-unstable { border-left-color: #9a6700; }
section.verdict-matched { border-left-color: #1a7f37; }
section.verdict-changed { border-left-color: #bc4c00; }
section.verdict-failed, section.verdict-error, section.verdict-timeout { border-left-color: #cf222e; }
section.verdict-missing, section.verdict-new { border-left-color: #8250df; }
section.verdict-recorded { border-left-color: #0969da; }
figure { margin: .5rem 0; display: inline-block; }
figure img { max-width: 100%; border: 1px solid #e4e6e8; }
figcaption, .note { color: #555; font-size: .85rem; }
ul.notes { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 4px; padding: .4rem .8rem .4rem 1.8rem;
           margin: .5rem 0; }
.why { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px;
       background: #f6f8fa; padding: .6rem .8rem; border-radius: 4px; overflow-x: auto; }
.why div, .why summary { white-space: pre; }
.why details.more > summary { cursor: pointer; color: #0969da; }
.why details.more[open] > summary { color: #555; }
h4 { font-size: .9rem; margin: .9rem 0 .3rem; }
.graph { overflow-x: auto; margin: .3rem 0 .6rem; }
details.whole-graph > summary, details.same-code > summary, details.fold > summary { cursor: pointer; color: #0969da; }
.code-file { border: 1px solid #d0d4d8; border-radius: 4px; margin: .4rem 0 .8rem; overflow-x: auto;
             font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.code-row { display: grid; grid-template-columns: 3.2em minmax(0, 1fr) 3.2em minmax(0, 1fr); }
.code-row .ln { color: #8c959f; text-align: right; padding-right: .5em; user-select: none; }
.code-row .src { white-space: pre; padding-left: .4em; overflow: hidden; text-overflow: ellipsis; }
.code-head { background: #f6f8fa; font-family: system-ui, sans-serif; font-weight: 600; color: #444; }
.code-file details.fold > summary { padding-left: 3.6em; font-family: system-ui, sans-serif; font-size: .8rem; }
.code-file .chg, .code-legend .chg { background: #fff8c5; }
.code-file .del, .code-legend .del { background: #ffebe9; }
.code-file .ins, .code-legend .ins { background: #dafbe1; }
.code-file .diverge, .code-legend .diverge { box-shadow: inset 3px 0 #9a6700; background: #fff1c2; }
.code-file .root, .code-legend .root { box-shadow: inset 4px 0 #bc4c00; background: #ffd8b5; font-weight: 600; }
.code-legend span { padding: 0 .35em; border-radius: 3px; }
.src.empty { color: #8c959f; font-style: italic; }
"""
