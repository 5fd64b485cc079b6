/// The report as Markdown: the same tables as the HTML page, without charts or the item browser.
public enum MarkdownReport {
    public static func render(_ e: Evaluation, title: String) -> String {
        var s = "# \(title)\n\nBudget N = \(e.budget); \(e.items.count) prompts finished by every strategy.\n"
        for t in e.tables { s += table(t) }
        return s
    }

    static func table(_ t: ReportTable) -> String {
        var s = "\n## \(t.title)\n\n"
        if let n = t.note { s += "\(n)\n\n" }
        s += "| " + t.header.joined(separator: " | ") + " |\n"
        s += "|" + t.header.map { _ in "---|" }.joined() + "\n"
        for r in t.rows {
            s += "| " + r.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        return s
    }
}
