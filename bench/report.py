"""Render the results built by run.py as a markdown table."""


def _number(value):
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def markdown(results):
    impls = results["impls"]
    show_ratio = len(impls) == 2
    headers = ["metric"] + [f"{name} {info['version'] or ''}".strip() for name, info in impls.items()]
    if show_ratio:
        headers.append("ratio (syncless/greenlet)")

    title = (f"Python {results['python'].split()[0]} ({results['python_implementation']}), "
             f"{results['platform']}; median of {results['runs']} run(s)")
    if results["quick"]:
        title += ", --quick counts"
    lines = [title, "", _row(headers), _row(["---"] + ["---:"] * (len(headers) - 1))]
    notes = []
    for metric in results["metrics"]:
        cells = [metric["label"]]
        for name in impls:
            result = metric["results"][name]
            cells.append(_number(result["median"]))
            notes += [f"- {metric['label']}, {name}: {note}" for note in result["notes"]]
        if show_ratio:
            cells.append("n/a" if metric["ratio"] is None else f"{metric['ratio']:.2f}")
        lines.append(_row(cells))

    higher = [m["label"] for m in results["metrics"] if m["higher_is_better"]]
    lines += ["", "Lower is better" + (f" except for: {', '.join(higher)}." if higher else ".")]
    if notes:
        lines += ["", "Notes:"] + notes
    return "\n".join(lines)
