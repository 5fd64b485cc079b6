import Foundation
import Testing

/// `prs compare` then `prs report` on the embedded model; the page checked in headless Chromium.
@Suite(.serialized) struct CompareReportTests {
    static let compared: Result<(URL, [String]), any Error> = Result {
        let dir = Repo.tempDir("compare")
        let lines = try String(
            contentsOf: Repo.root.appendingPathComponent("examples/prefs-heldout.jsonl"), encoding: .utf8
        )
        .split(separator: "\n").prefix(3)
        let prompts = dir.appendingPathComponent("p.jsonl")
        // A response text that would end the page's data <script> if it were not escaped.
        try
            (lines + [
                #"{"id": "script-test", "instruction": "Repeat exactly: </script><script>alert(1)</script>", "constraints": [{"id": "punctuation:no_comma"}]}"#
            ])
            .joined(separator: "\n").write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("cmp")
        let r = try run(
            Repo.prs,
            [
                "compare", "--prompts", prompts.path, "--out", out.path, "--budget", "4", "--max-tokens", "16",
                "--reward", "rubric", "--seed", "4", "--strategies", "rand,prand,prs,prs@verifier",
            ],
            environment: ["PRS_HOME": Repo.root.path])
        guard r.status == 0 else { throw SetupError("prs compare failed: \(r.stderr)") }
        let ids =
            lines.compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
            } + ["script-test"]
        return (out, ids)
    }

    @Test func compareRunsEveryStrategyAtTheSameBudget() throws {
        let (out, _) = try Self.compared.get()
        for label in ["rand", "prand", "prs", "prs+verifier"] {
            let trees = try readTrees(out.appendingPathComponent(label))
            #expect(trees.count == 4, "\(label)")
            for t in trees {
                let nodes = try #require(t["nodes"] as? [[String: Any]])
                #expect(nodes.filter { $0["kind"] as? String != "feedback" }.count == 4, "\(label): budget 4")
            }
        }
        let again = try run(
            Repo.prs,
            [
                "compare", "--prompts", out.deletingLastPathComponent().appendingPathComponent("p.jsonl").path,
                "--out", out.path, "--budget", "4", "--max-tokens", "16", "--reward", "rubric", "--seed", "4",
                "--strategies", "rand,prand,prs,prs@verifier",
            ], environment: ["PRS_HOME": Repo.root.path])
        #expect(
            again.status == 0 && again.stdout.components(separatedBy: "items: 4 done").count == 5,
            "a rerun resumes (nothing left to do)")
        #expect(
            again.stdout.contains("had the highest mean best reward") && again.stdout.contains("95% CI"),
            "the table is read in one sentence:\n\(again.stdout)")
    }

    @Test func theMarkdownReportHasTheCurvesAndWinRates() throws {
        let (out, _) = try Self.compared.get()
        let md = out.appendingPathComponent("report.md")
        let r = try run(Repo.prs, ["report", out.path, "--out", md.path, "--format", "md"])
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOf: md, encoding: .utf8)
        #expect(text.contains("| strategy | prompts | N=1 | N=2 | N=4 |"))
        #expect(text.contains("| prs | rand | 4 |"), "win rate of PRS against Rand")
        #expect(text.contains("## Constraints followed by the best answer"))
    }

    @Test func theHTMLPageRendersInChromiumAndItsBrowserSwitchesItems() throws {
        let (out, ids) = try Self.compared.get()
        let html = out.appendingPathComponent("report.html")
        let r = try run(Repo.prs, ["report", out.path, "--out", html.path])
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOf: html, encoding: .utf8)
        for external in ["src=\"http", "href=\"http", "<link", "<script src", "@import", "url(http"] {
            #expect(!page.contains(external), "no external resources: found \(external)")
        }
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        let browser = try #require(chromium, "Chromium is not installed: run scripts/setup.sh (make test does)")
        for id in [ids[1], "script-test"] {
            let url = html.absoluteString + "#item=" + id
            let dom = try run(
                URL(fileURLWithPath: browser),
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                    "--virtual-time-budget=3000", "--dump-dom", url,
                ])
            #expect(dom.status == 0, "\(dom.stderr)")
            #expect(!dom.stderr.contains("Uncaught"), "console errors: \(dom.stderr)")
            #expect(!dom.stderr.contains(":CONSOLE("), "console messages: \(dom.stderr)")
            // Three charts with drawn series, and the item browser showing the item asked for.
            #expect(dom.stdout.components(separatedBy: "<svg").count - 1 == 3)
            #expect(dom.stdout.contains("class=\"series\""))
            #expect(dom.stdout.contains("class=\"bar\""))
            #expect(dom.stdout.contains("data-item=\"\(id)\""), "the browser switched to \(id)")
            #expect(dom.stdout.contains("node feedback"), "a PRS tree is shown with its feedback")
        }
    }
}
