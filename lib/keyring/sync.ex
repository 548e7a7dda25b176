defmodule Keyring.Sync do
  @moduledoc """
  Content sync between keyring members: blobs move by cid over the mesh as
  BLAKE3 verified streams (mesh protocol 3), from one or many members at once.

  ## What a member may fetch

  Content is shared *into* keyrings (`Keyring.Store.share/3`). A node serves
  a blob to a peer only over a connection of a keyring the blob is shared
  into; an absent blob and a blob shared only in another keyring get the same
  answer (`not found`), so a member guessing cids learns nothing about the
  node's other keyrings. A fetched blob is shared into the keyring it was
  fetched for, which protects it from GC and lets this node serve it on to
  that keyring's members.

  ## How bytes move

  Everything below runs in Rust; the BEAM only hears progress. Every 16 KiB
  group is verified against the cid before it is written into a partial blob
  (which survives `kill -9`); an interrupted download resumes by asking only
  for the groups it misses. With several providers, ranges are handed out by
  pull (a faster provider comes back for more sooner) and an idle provider
  takes over the tail of a slow one's range. A provider whose bytes fail
  verification, that lies about the size or cuts its stream short is dropped
  at that group and its ranges go to the others; a range with no verified
  group within `stall_ms` moves on too. With no provider left the transfer
  ends `:stalled` rather than hanging.

  ## Policy

  `mirror/2` marks a keyring whose shared blobs this node wants (the mark
  is kept in the store, so it survives restarts; `mirror:` in the options
  marks keyrings too): whenever a member of a mirrored keyring links up (and
  when a keyring is marked), this node lists what that member shares into
  the keyring and fetches what it lacks. Nothing else is fetched unless
  asked (`fetch/2`).

  ## Events

  On `Keyring.PubSub` topic `"keyring:sync"` (`subscribe/1`):
  `{:keyring_sync, :started | :progress | :finished, transfer}` where
  `transfer` is the map `transfers/1` lists.

  ## Options

  Given as `sync: [...]` to `Keyring.start_link/1`:

  #{Keyring.Options.docs(Keyring.Sync.Options.schema())}
  """

  alias Keyring.Instance
  alias Keyring.Store.Cid
  alias Keyring.Sync.Server

  @topic "keyring:sync"

  @typedoc """
  A transfer: `:id`, `:keyring`, `:cids`, `:reason` (`:fetch` or `:mirror`),
  `:stage` (`:running`, `:done`, `:stalled`, `:not_found` or
  `{:failed, reason}`), `:blobs_done`/`:blobs_total`,
  `:bytes_done`/`:bytes_total`, `:rate` (bytes/s), `:eta_s`, `:providers`
  (key => verified bytes), `:stalled`, `:errors` (providers dropped and why),
  `:not_found`, `:started_ms`, `:finished_ms`.
  """
  @type transfer :: map()

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {Server, :start_link, [opts]}}
  end

  @doc """
  Fetches blob `cid` (or a list of cids) from keyring members. Options:

    * `:keyring` - the keyring to fetch for (default: the first keyring with
      a linked member, or with one of `:from`)
    * `:from` - members to fetch from: keys (raw or text), or
      `{key, "host:port"}` for a member whose address this node has not
      learnt yet (default: every linked member of the keyring)
    * `:async` - `true` to return `{:ok, transfer_id}` at once
    * `:timeout` - how long to wait (default 10 minutes)
    * `:instance`

  Returns `{:ok, transfer}` when every blob is stored, or
  `{:error, stage, transfer}` (`:stalled`, `:not_found`, `{:failed, _}`), or
  `{:error, reason}` when no transfer could start (`:no_providers`,
  `:no_keyring`, `:not_member`).
  """
  @spec fetch(String.t() | [String.t()], keyword()) ::
          {:ok, transfer() | pos_integer()} | {:error, term(), transfer()} | {:error, term()}
  def fetch(cid, opts \\ []) do
    opts =
      Keyword.validate!(opts,
        instance: Keyring,
        keyring: nil,
        from: nil,
        async: false,
        timeout: 600_000
      )

    cids = cid |> List.wrap() |> Enum.map(&Cid.parse!/1)
    keyring = opts[:keyring] && Keyring.Ring.id!(opts[:keyring])
    from = opts[:from] && Enum.map(List.wrap(opts[:from]), &peer!/1)
    message = {:fetch, cids, keyring, from, not opts[:async]}

    try do
      GenServer.call(Server.server(opts[:instance]), message, opts[:timeout])
    catch
      :exit, {:timeout, _} -> {:error, :timeout}
    end
  end

  @doc "Running and recently finished transfers (see `t:transfer/0`)."
  @spec transfers(keyword()) :: [transfer()]
  def transfers(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), :transfers)
  end

  @doc """
  The mesh peers this node has a live link to, each with the keyrings the
  links are for: `[%{peer: key, keyrings: [id]}]`.
  """
  @spec connected_peers(keyword()) :: [%{peer: binary(), keyrings: [binary()]}]
  def connected_peers(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    instance = opts[:instance]
    mesh = Instance.fetch!(instance, :mesh)

    for ring <- Keyring.Ring.list(instance: instance),
        peer <- Keyring.Mesh.Quic.connected(mesh, ring) do
      {peer, ring}
    end
    |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
    |> Enum.map(fn {peer, rings} -> %{peer: peer, keyrings: Enum.sort(rings)} end)
    |> Enum.sort_by(& &1.peer)
  end

  @doc """
  Marks `keyring` as mirrored: what its members share into it is fetched
  when they link up (and now, from those linked). `:instance` option.
  """
  @spec mirror(binary() | String.t(), keyword()) :: :ok
  def mirror(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:mirror, Keyring.Ring.id!(keyring), true})
  end

  @doc "Stops mirroring `keyring`. `:instance` option."
  @spec unmirror(binary() | String.t(), keyword()) :: :ok
  def unmirror(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:mirror, Keyring.Ring.id!(keyring), false})
  end

  @doc "The mirrored keyrings. `:instance` option."
  @spec mirrored(keyword()) :: [binary()]
  def mirrored(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), :mirrored)
  end

  @doc "Subscribes the caller to transfer events (see above). `:instance` option."
  @spec subscribe(keyword()) :: :ok
  def subscribe(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Keyring.PubSub.subscribe(@topic, instance: opts[:instance])
  end

  @doc false
  def topic, do: @topic

  defp peer!({key, addr}) when is_binary(addr), do: {key |> peer!() |> elem(0), addr}
  defp peer!(<<_::256>> = key), do: {key, nil}
  defp peer!(text) when is_binary(text), do: {Keyring.Identity.NodeId.parse!(text), nil}
end
