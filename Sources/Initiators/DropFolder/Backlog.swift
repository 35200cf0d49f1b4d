import SkyLib
import RouteModel

/// A drop folder's backlog on the progress board: from the first file taken while idle until
/// the folder is idle again, files done of files found (done, in hand and queued).
final class Backlog: Sendable {
    /// Where the backlog is shown (`/debug/progress`, the dashboard, `sky progress`).
    private let board: ProgressBoard
    private let route: String
    private let folder: String
    /// The folder's queue, whose waiting names are part of the total.
    private let queue: WorkQueue<DropItem>
    /// The board's entry while there is a backlog, and the files done and in hand since it began.
    private let state = Locked<(entry: ProgressBoard.Entry?, done: Int64, inHand: Int64)>((nil, 0, 0))

    /// No backlog yet: the entry appears with the first file taken.
    init(board: ProgressBoard, route: String, folder: String, queue: WorkQueue<DropItem>) {
        self.board = board
        self.route = route
        self.folder = folder
        self.queue = queue
    }

    /// A worker took a file: the total grows by what is waiting now.
    func started() {
        self.state.withLock { state in
            if state.entry == nil { state.entry = self.board.begin(.files, route: self.route, name: self.folder) }
            state.inHand += 1
            state.entry?.total(state.done + state.inHand + Int64(self.queue.waiting))
        }
    }

    /// A worker finished a file; when none is in hand or waiting the backlog is over and its entry
    /// leaves the board.
    func finished() {
        self.state.withLock { state in
            state.done += 1
            state.inHand -= 1
            let waiting = Int64(self.queue.waiting)
            state.entry?.done(state.done)
            state.entry?.total(state.done + state.inHand + waiting)
            if state.inHand == 0 && waiting == 0, let entry = state.entry {
                self.board.end(entry)
                state = (nil, 0, 0)
            }
        }
    }
}
