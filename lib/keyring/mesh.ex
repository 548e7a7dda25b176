defmodule Keyring.Mesh do
  @moduledoc """
  The mesh plane: keyrings (`Keyring.Ring`) and default-deny RPC
  (`Keyring.RPC`) between their members over authenticated QUIC.

  ## Transport

  QUIC (quinn + rustls in the native library): TLS 1.3 only, Ed25519 raw
  public keys (RFC 7250), the peer's key checked against the keyring's current
  membership inside the handshake on both sides, no 0-RTT, no session
  resumption, keep-alive pings and an idle timeout. Key exchange prefers the
  hybrid X25519MLKEM768, then X25519.

  One link per peer and keyring: when both sides dial at once they keep the
  connection the lower key dialled. A link lost to a timeout, a reset or the
  peer's shutdown is redialled in the background with exponential backoff
  (0.1 s doubling to 30 s, jittered) while the peer is a member; one closed on
  purpose (revocation, leaving) is not. At start a node dials every member it
  has a stored address for, and members of a shared keyring that appear in
  the cluster plane's presence are dialled at the mesh address they publish.

  ## Options

  Given as `mesh: [...]` to `Keyring.start_link/1`:

  #{Keyring.Options.docs(Keyring.Mesh.Options.schema())}

  ## Events

  Each instance publishes, locally on `Keyring.PubSub` topic `"keyring:mesh"`
  (`Keyring.Mesh.subscribe/1`):

    * `{:keyring_mesh, :peer_up, %{keyring: id, peer: key, address: addr}}`
    * `{:keyring_mesh, :peer_down, %{keyring: id, peer: key, reason: text}}`
    * `{:keyring_mesh, :membership, info}` (see `Keyring.Ring.info/2`) whenever
      a keyring's log changes
  """
  use Supervisor

  alias Keyring.Instance

  @topic "keyring:mesh"

  @doc false
  def start_link(opts) do
    Supervisor.start_link(__MODULE__, opts, name: Instance.child_name(opts[:name], __MODULE__))
  end

  @impl Supervisor
  def init(opts) do
    Supervisor.init([{Keyring.Mesh.Server, opts}], strategy: :one_for_one)
  end

  @doc """
  Subscribes the caller to the mesh plane's events (see above). Options:
  `:instance` (default `Keyring`).
  """
  @spec subscribe(keyword()) :: :ok
  def subscribe(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Keyring.PubSub.subscribe(@topic, instance: opts[:instance])
  end

  @doc """
  Finds which blobs shared in `keyring` this node has and `peer` (node id
  text or 32-byte key, a member of `keyring`) lacks, and the reverse, with
  range-based set reconciliation over the mesh (negentropy protocol
  version 1, mesh protocol 6):

      {:ok, %{have: [cid], need: [cid], round_trips: 3, sent: 1185,
              received: 1224, items: 1_000_000}}

  `have`: cids this node shares in `keyring` that the peer does not;
  `need`: cids the peer shares there that this node does not. Each side's
  set is what `Keyring.Store.share/3` put in that keyring (the peer's
  as seen at most 2 s before). A million items with one difference take 3
  round trips and about 2.4 KB in all; the cost grows with the number of
  differences, not with the size of the sets. `sent` and `received` count
  this node's bytes on the stream.

  Errors: `:busy` (the peer runs as many reconciliations for this node as
  it allows, 2), `{:protocol, why}` (the peer's messages broke the
  protocol: the session is dropped), `:too_slow`, `{:too_many_rounds, n}`,
  `:timeout`, `{:store, why}`, and the mesh's transport errors.

  Options:

  #{Keyring.Options.docs(Keyring.Mesh.Reconcile.schema())}
  """
  @spec reconcile(String.t() | <<_::256>>, String.t() | <<_::256>>, keyword()) ::
          {:ok, map()} | {:error, term()}
  def reconcile(peer, keyring, opts \\ []),
    do: Keyring.Mesh.Reconcile.reconcile(peer, keyring, opts)

  @doc false
  def topic, do: @topic
end
