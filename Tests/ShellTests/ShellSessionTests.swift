import Shell
import Testing

struct ShellWordsTests {
    @Test func quotesAndEscapesGroupWords() throws {
        #expect(try ShellWords.split(#"stop service=upper  "host=a b" 'x\y' c\ d"#) == ["stop", "service=upper", "host=a b", #"x\y"#, "c d"])
        #expect(try ShellWords.split("   ").isEmpty)
        #expect(throws: ShellWords.UnclosedQuote.self) { try ShellWords.split(#"trace "abc"#) }
    }
}

struct ShellSessionTests {
    @Test func theFilterPersistsAndLineWordsOverrideIt() {
        var session = ShellSession()
        #expect(session.handle("filter service=uppercase region=eu") == .say("filter: service=uppercase region=eu"))
        #expect(session.prompt == "sky [service=uppercase region=eu]> ")
        #expect(session.handle("nodes") == .run(["nodes", "--service", "uppercase", "--region", "eu"], preface: nil))
        // key=value on the line wins for that command only; flags pass through as written.
        #expect(session.handle("stop region=us --dry-run --timeout 5") == .run(["stop", "--service", "uppercase", "--region", "us", "--dry-run", "--timeout", "5"], preface: nil))
        #expect(session.handle("nodes") == .run(["nodes", "--service", "uppercase", "--region", "eu"], preface: nil))
        // key= removes a key; clear removes all.
        #expect(session.handle("filter region=") == .say("filter: service=uppercase"))
        #expect(session.handle("filter clear") == .say("filter: none"))
        #expect(session.handle("nodes") == .run(["nodes"], preface: nil))
    }

    @Test func mistakesAreExplainedAndChangeNothing() {
        var session = ShellSession()
        _ = session.handle("filter host=web-1")
        #expect(session.handle("filter colour=red") == .say("filter takes key=value with keys service, version, region, host, kind, not 'colour=red'; the filter is unchanged"))
        #expect(session.filterDescription == "host=web-1")
        #expect(session.handle("frobnicate") == .say("unknown command 'frobnicate'; type help for the list"))
        #expect(session.handle("stop uppercase") == .say("stop takes key=value words, not 'uppercase'; see help stop"))
        #expect(session.handle(#"trace "abc"#) == .say("unclosed \" quote; nothing was run"))
    }

    @Test func deployTakesTheServiceAndTheFilterHost() {
        var session = ShellSession()
        _ = session.handle("filter host=web-1 region=eu")
        #expect(session.handle("deploy uppercase instances=2") == .run(["deploy", "uppercase", "--host", "web-1", "--instances", "2"], preface: nil))
        #expect(session.handle("deploy") == .say("usage: deploy SERVICE [host=H] [instances=N] [--dry-run]"))
    }

    @Test func helpIsEverywhere() {
        var session = ShellSession()
        guard case .say(let list) = session.handle("help") else { Issue.record("help printed nothing"); return }
        for command in ShellSession.commands { #expect(list.contains(command.usage)) }
        #expect(session.handle("help stop") == .run(["stop", "--help"], preface: "usage in this shell: stop [key=value…] [--dry-run] [--all] [--timeout S]  (key=value is the same as --key value)"))
        #expect(session.handle("stop --help") == session.handle("help stop"))
        #expect(session.handle("events 5") == .events(5))
        #expect(session.handle("exit") == .exit)
        #expect(session.handle("") == .nothing)
    }
}

struct ShellCompleterTests {
    let completer = ShellCompleter(vocabulary: ["service": ["reverse", "uppercase", "upstream"], "host": ["web-1", "web-2"]])

    @Test func commandsThenKeysThenValues() {
        #expect(self.completer.candidates(before: "", word: "st") == ["stop"])
        #expect(self.completer.candidates(before: "", word: "re") == ["restart", "register"])
        #expect(self.completer.candidates(before: "stop ", word: "ser") == ["service="])
        #expect(self.completer.candidates(before: "stop ", word: "--d") == ["--dry-run"])
        #expect(self.completer.candidates(before: "filter ", word: "service=up") == ["service=uppercase", "service=upstream"])
        #expect(self.completer.candidates(before: "nodes service=reverse ", word: "host=") == ["host=web-1", "host=web-2"])
        #expect(self.completer.candidates(before: "deploy ", word: "u") == ["uppercase", "upstream"])
        #expect(self.completer.candidates(before: "help ", word: "dep") == ["deploy"])
        #expect(self.completer.candidates(before: "nosuch ", word: "x").isEmpty)
        #expect(ShellCompleter.commonPrefix(["service=uppercase", "service=upstream"]) == "service=up")
    }
}
