//! The FunLess ABI for Zig functions on fless.
//!
//!     const std = @import("std");
//!     const fless = @import("fless");
//!
//!     pub fn fl_main(call: *fless.Call, args: std.json.Value) !std.json.Value {
//!         if (args != .object) return call.fail("arguments must be an object", .{});
//!         return args;
//!     }
//!
//!     comptime {
//!         fless.exportMain(@This());
//!     }
//!
//! `exportMain` exports `__invoke`: it fetches the JSON arguments, parses them
//! into a `std.json.Value`, calls `fl_main` and writes what it returns (any
//! value `std.json.Stringify` can write) as the response. `call.fail(...)`
//! sets the error message the caller gets with a 422; any other error is
//! reported by its name.
const std = @import("std");

extern "fl_imps" fn __get_input_data(ptr: [*]u8) void;
extern "fl_imps" fn __insert_response(ptr: [*]const u8, len: i32) void;
extern "fl_imps" fn __insert_error(ptr: [*]const u8, len: i32) void;
extern "fl_imps" fn __console_log(ptr: [*]const u8, len: i32) void;
extern "fl_imps" fn __http_request(
    resp: [*]u8,
    resp_len: *u32,
    status: *u16,
    method: i32,
    uri: [*]const u8,
    uri_len: i32,
    headers: [*]const u8,
    headers_len: i32,
    body: [*]const u8,
    body_len: i32,
) void;

/// One invocation: its memory and, when it fails, its message.
pub const Call = struct {
    /// Freed when the invocation ends; allocate everything from here.
    arena: std.mem.Allocator,
    message: ?[]const u8 = null,

    /// Sets the error message; return what it returns from `fl_main`.
    pub fn fail(self: *Call, comptime format: []const u8, args: anytype) error{FunctionFailed} {
        self.message = std.fmt.allocPrint(self.arena, format, args) catch "out of memory";
        return error.FunctionFailed;
    }

    /// Writes one log line to the host.
    pub fn log(self: *Call, comptime format: []const u8, args: anytype) void {
        const line = std.fmt.allocPrint(self.arena, format, args) catch return;
        __console_log(line.ptr, @intCast(line.len));
    }
};

/// HTTP methods as the ABI numbers them.
pub const Method = enum(i32) { get = 0, post = 1, put = 2, delete = 3 };

/// The answer to `httpRequest`; status 0 means the request failed.
pub const HttpResponse = struct { status: u16, body: []u8 };

/// One request through the host, to a host on the function's allow-list.
/// `headers` are "Key:Value" lines joined by '\n'; at most `max_body` bytes are kept.
pub fn httpRequest(
    call: *Call,
    method: Method,
    uri: []const u8,
    headers: []const u8,
    body: []const u8,
    max_body: usize,
) !HttpResponse {
    const buf = try call.arena.alloc(u8, max_body + 1);
    var len: u32 = @intCast(max_body);
    var status: u16 = 0;
    __http_request(buf.ptr, &len, &status, @intFromEnum(method), uri.ptr, @intCast(uri.len), headers.ptr, @intCast(headers.len), body.ptr, @intCast(body.len));
    return .{ .status = status, .body = buf[0..@min(len, max_body)] };
}

fn reply_error(message: []const u8) i32 {
    __insert_error(message.ptr, @intCast(message.len));
    return 1;
}

/// Exports `__invoke` for the `fl_main` of `root` (pass `@This()` from your file).
pub fn exportMain(comptime root: type) void {
    const invoke = struct {
        fn invoke(len: i32) callconv(.c) i32 {
            var arena_state = std.heap.ArenaAllocator.init(std.heap.wasm_allocator);
            defer arena_state.deinit();
            const arena = arena_state.allocator();
            const input = arena.alloc(u8, @intCast(@max(len, 1))) catch return reply_error("out of memory");
            __get_input_data(input.ptr);
            const args = std.json.parseFromSliceLeaky(std.json.Value, arena, input[0..@intCast(len)], .{}) catch
                return reply_error("arguments are not JSON");
            var call = Call{ .arena = arena };
            const result = root.fl_main(&call, args) catch |err| {
                return reply_error(call.message orelse @errorName(err));
            };
            const json = std.json.Stringify.valueAlloc(arena, result, .{}) catch return reply_error("out of memory");
            __insert_response(json.ptr, @intCast(json.len));
            return 0;
        }
    }.invoke;
    @export(&invoke, .{ .name = "__invoke" });
}
