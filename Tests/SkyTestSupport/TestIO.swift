public import NIOCore
public import NIOPosix

/// The event loops and thread pool tests hand the parts they build, where a node would hand
/// its own (`NodeContext`). NIO's process-wide ones: tests build many parts and none owns them.
public enum TestIO {
    /// The event loops a part under test runs on.
    public static var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }
    /// Where a part under test does its blocking work.
    public static var threadPool: NIOThreadPool { .singleton }
}
