defmodule Keyring.Gateway do
  @schema [
    port: [type: :non_neg_integer, default: 0, doc: "TCP port (0: any free port, see `url/1`)"],
    bind: [
      type: :string,
      default: "127.0.0.1",
      doc: "IP address; anything but loopback needs `public: true`"
    ],
    public: [
      type: :boolean,
      default: false,
      doc: "allow a non-loopback `:bind`; every route but the page then needs the token"
    ],
    token: [
      type: {:or, [:string, {:in, [nil]}]},
      default: nil,
      doc:
        "bearer token (16+ characters); `nil`: 32 random bytes kept in `<data_dir>/gateway.token` (0600, directory 0700)"
    ],
    allowed_hosts: [
      type: {:list, :string},
      default: [],
      doc: "extra `Host` names accepted (loopback names always are)"
    ],
    allowed_origins: [
      type: {:list, :string},
      default: [],
      doc: "extra exact `Origin`s accepted (this server's own always are)"
    ],
    max_body: [type: :pos_integer, default: 1_048_576, doc: "largest JSON body, bytes"],
    max_upload: [type: :pos_integer, default: 1_073_741_824, doc: "largest blob upload, bytes"],
    max_connections: [type: :pos_integer, default: 4096, doc: "open connections"],
    max_sse_clients: [type: :pos_integer, default: 2048, doc: "event-stream clients"],
    max_in_flight: [type: :pos_integer, default: 1024, doc: "requests waiting for the BEAM"],
    response_timeout: [
      type: :pos_integer,
      default: 30_000,
      doc: "ms before a request the BEAM did not answer gets 504"
    ],
    body_idle_timeout: [
      type: :pos_integer,
      default: 30_000,
      doc: "ms a streamed body may pause, either way"
    ],
    header_timeout: [
      type: :pos_integer,
      default: 10_000,
      doc: "ms a client may take to send its headers"
    ],
    keepalive: [
      type: :pos_integer,
      default: 15_000,
      doc: "ms between SSE keep-alive comments on a quiet stream"
    ],
    sse_stall_timeout: [
      type: :pos_integer,
      default: 60_000,
      doc: "ms an SSE client may accept nothing before it is cut"
    ],
    replay_events: [
      type: :pos_integer,
      default: 1024,
      doc: "events kept for `Last-Event-ID` resume"
    ],
    replay_bytes: [type: :pos_integer, default: 4_194_304, doc: "bytes of events kept for resume"],
    threads: [type: :pos_integer, default: 2, doc: "tokio worker threads"],
    page: [
      type: {:or, [:string, {:in, [nil]}]},
      default: nil,
      doc: "the status page file (`nil`: `priv/gateway/index.html`)"
    ]
  ]

  @moduledoc """
  An HTTP gateway for agents that are not BEAM nodes: REST under `/v1`,
  Server-Sent Events at `/v1/events`, MCP at `POST /mcp`, and a live status
  page of the mesh at `/`.

  Off by default when Keyring is embedded; `mix keyring.start` and
  `mix keyring.demo` turn it on and print its URL. Enable it with the
  `gateway:` option of `Keyring`:

      {Keyring, name: MyApp.Keyring, gateway: [port: 7070]}

  The server is hyper on a tokio runtime inside the NIF (crate
  `keyring_gateway`): it parses HTTP, checks every request at the door,
  serves the page and the event stream itself, and hands each other request
  to the BEAM as a message; a process per request runs the public Elixir
  API and answers. JSON is serde_json on both sides.

  ## Options (`gateway: [...]`)

  #{Keyring.Options.docs(@schema)}

  ## Safety

  - `Host` must name this server (DNS rebinding) and a present `Origin`
    must be its own: otherwise 403.
  - Every mutating route and MCP tool needs `Authorization: Bearer <token>`,
    compared in constant time; a wrong token is refused on every route.
  - Mutations take `Content-Type: application/json` (blob uploads
    `application/octet-stream`), so a cross-site form cannot send one.
  - Bodies, queries, headers, connections, event clients and requests in
    flight are bounded; every refusal is a JSON error
    `{"error": {"code": ..., "message": ...}}` (a JSON-RPC error on `/mcp`);
    unknown routes are 404.
  - RPC calls go out as this node through `Keyring.call/4`: the peer's
    `expose`/`authorize` rules decide, as for any call.

  ## Routes

  `priv/openapi.json` describes the REST API. In short: `GET /v1/health`,
  `/v1/status`, `/v1/identity`, `/v1/presence`, `/v1/mesh`, `/v1/keyrings`
  (+ `/{id}`, `/{id}/members`, `/{id}/links`), `POST /v1/keyrings`,
  `/v1/keyrings/join`, `/v1/keyrings/{id}/invites`, `POST /v1/blobs` and
  `GET /v1/blobs/{cid}` (streamed), `/v1/blobs/{cid}/info`, `/v1/refs`,
  `POST /v1/rpc/{peer}/{handle}`, `POST /v1/tasks/{capability}`,
  `GET /v1/transfers`.

  ## Events

  `GET /v1/events?types=presence,mesh&subject=<id>&replay=all` streams
  `presence.{join,update,down,leave}`, `topology.{nodeup,nodedown}`,
  `mesh.{peer_up,peer_down}`, `keyring.membership`,
  `sync.{started,progress,finished}` (a transfer's figures) and whatever
  `publish/3` sends. Every event has an id; a client reconnecting with
  `Last-Event-ID` gets what it missed from a bounded ring, or a `lagged`
  event saying how many it lost (then it should refetch `/v1/mesh`).

  ## MCP

  `POST /mcp` is sessionless and JSON-only, and answers both eras: the 2025
  revisions (`initialize`, `ping`, `tools/list`, `tools/call`) and
  2026-07-28 (`server/discover`, per-request `_meta`, the
  `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` header checks). Its
  tools are the REST operations, named `keyring_<operation>`.
  """

  use Supervisor

  alias Keyring.Instance

  @doc "The gateway's URL (`http://127.0.0.1:PORT/`), or `nil` when it is off."
  @spec url(keyword()) :: String.t() | nil
  def url(opts \\ []) do
    Instance.fetch!(instance!(opts), :gateway).url
  rescue
    ArgumentError -> nil
  end

  @doc "The bearer token mutations need (also in `<data_dir>/gateway.token`)."
  @spec token(keyword()) :: String.t()
  def token(opts \\ []), do: Instance.fetch!(instance!(opts), :gateway).token

  @doc "Counters: requests, refusals, timeouts, connections, SSE clients, events, lagged notices."
  @spec stats(keyword()) :: %{atom() => non_neg_integer()}
  def stats(opts \\ []),
    do: Keyring.Native.gateway_stats(Instance.fetch!(instance!(opts), :gateway).handle)

  defp instance!(opts), do: Keyword.validate!(opts, instance: Keyring)[:instance]

  @doc """
  Publishes an event of `type` (`[a-z0-9._-]`, at most 64 characters) with
  JSON-encodable `data` to every `/v1/events` client. Options: `:instance`
  (default `Keyring`), `:subject` (what `?subject=` filters on). Returns the
  event id.
  """
  @spec publish(String.t(), term(), keyword()) :: {:ok, String.t()} | {:error, term()}
  def publish(type, data, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, subject: nil)
    %{handle: gw} = Instance.fetch!(opts[:instance], :gateway)

    with {:ok, json} <- Keyring.Gateway.JSON.encode(data),
         do: Keyring.Native.gateway_publish(gw, type, opts[:subject], json)
  end

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :supervisor}
  end

  @doc false
  def start_link(opts), do: Supervisor.start_link(__MODULE__, opts)

  @impl Supervisor
  def init(opts) do
    children = [
      {Keyring.Gateway.Server, opts},
      {Keyring.Gateway.EventBridge, instance: opts[:instance]}
    ]

    Supervisor.init(children, strategy: :rest_for_one)
  end

  @doc false
  # `gateway:` in Keyring's options: false/nil (off), true (defaults) or a keyword list.
  @spec validate!(boolean() | nil | keyword()) :: keyword() | false
  def validate!(off) when off in [nil, false], do: false
  def validate!(true), do: validate!([])

  def validate!(opts) when is_list(opts) do
    opts = Keyring.Options.validate!(opts, @schema, "Keyring.Gateway")

    unless opts[:port] in 0..65_535,
      do:
        raise(ArgumentError, "Keyring.Gateway option :port must be 0..65535, got: #{opts[:port]}")

    ip =
      case :inet.parse_address(to_charlist(opts[:bind])) do
        {:ok, ip} ->
          ip

        _ ->
          raise ArgumentError,
                "Keyring.Gateway option :bind must be an IP address, got: #{inspect(opts[:bind])}"
      end

    unless loopback?(ip) or opts[:public],
      do:
        raise(
          ArgumentError,
          "Keyring.Gateway :bind #{opts[:bind]} is not loopback: pass public: true " <>
            "(the token is then required on every route)"
        )

    unless is_nil(opts[:token]) or byte_size(opts[:token]) >= 16,
      do: raise(ArgumentError, "Keyring.Gateway option :token must be at least 16 characters")

    opts
  end

  defp loopback?({127, _, _, _}), do: true
  defp loopback?({0, 0, 0, 0, 0, 0, 0, 1}), do: true
  defp loopback?(_), do: false
end
