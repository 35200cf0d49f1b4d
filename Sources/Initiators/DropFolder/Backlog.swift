import SkyLib

/// A drop folder's backlog on the progress board: from the first file taken while idle until
/// the folder is idle again, files done of files found (done, in hand and queued).
final class Backlog: Sendable {
    private let board: ProgressBoard
    private let route: String
    private let folder: String
    private let queue: WorkQueue<DropItem>
    private let state = Locked<(entry: ProgressBoard.Entry?, done: Int64, inHand: Int64)>((nil, 0, 0))

    init(board: ProgressBoard, route: String, folder: String, queue: WorkQueue<DropItem>) {
        self.board = board
        self.route = route
        self.folder = folder
        self.queue = queue
    }

    func started() {
        self.state.withLock { state in
            if state.entry == nil { state.entry = self.board.begin(.files, route: self.route, name: self.folder) }
            state.inHand += 1
            state.entry?.total(state.done + state.inHand + Int64(self.queue.waiting))
        }
    }

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
