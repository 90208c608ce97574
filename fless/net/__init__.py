"""The transport between nodes: ZeroMQ ROUTER/DEALER RPC with CBOR headers.

The public face of ``net``: the message schema and its codec (pure, no
sockets), an asyncio RPC server and client, the cluster's CURVE keys, and
the errors a call can end with. Nothing here knows what an invocation means;
``core`` gives the messages their meaning.
"""

from ._client import RpcClient
from ._curve import CurveConfig, generate_cluster_keys
from ._endpoints import plaintext_allowed
from ._errors import MalformedMessage, MessageTooLarge, NetError, PeerGone, RpcTimeout
from ._requests import ClientStats
from ._schema import MESSAGE_SPECS, PROTOCOL_VERSION, Message, MessageSpec, decode, encode
from ._server import RpcServer, ServerStats
from ._sockets import DEFAULT_MAX_MESSAGE_BYTES

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MESSAGE_SPECS",
    "PROTOCOL_VERSION",
    "ClientStats",
    "CurveConfig",
    "MalformedMessage",
    "Message",
    "MessageSpec",
    "MessageTooLarge",
    "NetError",
    "PeerGone",
    "RpcClient",
    "RpcServer",
    "RpcTimeout",
    "ServerStats",
    "decode",
    "encode",
    "generate_cluster_keys",
    "plaintext_allowed",
]
