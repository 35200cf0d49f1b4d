/// Splits a shell line into words: blanks separate, single and double quotes group, a
/// backslash escapes the next character.
public enum ShellWords {
    /// An unterminated quote at the end of a line.
    public struct UnclosedQuote: Error, Sendable, Hashable, CustomStringConvertible {
        /// The quote left open (`'` or `"`).
        public let quote: Character
        public var description: String { "unclosed \(self.quote) quote" }
    }

    /// The words of `line`; throws when a quote is left open.
    public static func split(_ line: String) throws(UnclosedQuote) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                word.append(character)
                escaped = false
                continue
            }
            if character == "\\" && quote != "'" {
                escaped = true
                inWord = true
                continue
            }
            if let open = quote {
                if character == open { quote = nil } else { word.append(character) }
                continue
            }
            if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if let quote { throw UnclosedQuote(quote: quote) }
        if inWord { words.append(word) }
        return words
    }
}
