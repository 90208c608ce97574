//! POSTs args.body to args.url with an X-Test header; answers {"status", "body"}.
const std = @import("std");
const fless = @import("fless");

comptime {
    fless.exportMain(@This());
}

const Answer = struct { status: u16, body: []const u8 };

pub fn fl_main(call: *fless.Call, args: std.json.Value) !Answer {
    const url = args.object.get("url") orelse return call.fail("no url", .{});
    const body = args.object.get("body") orelse return call.fail("no body", .{});
    const resp = try fless.httpRequest(call, .post, url.string, "X-Test:yes", body.string, 4096);
    return .{ .status = resp.status, .body = resp.body };
}
