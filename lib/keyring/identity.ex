defmodule Keyring.Identity do
  @moduledoc """
  The node's Ed25519 identity.

  A key pair is generated on the first start and kept in
  `<data_dir>/identity.key` (mode 0600, written atomically). With the
  `:passphrase` option of `Keyring.start_link/1` the secret is sealed at rest
  with Argon2id and XChaCha20-Poly1305; a wrong passphrase makes the start
  return `{:error, :bad_passphrase}`. The secret key stays inside the native
  library: Elixir only holds an opaque handle.

  The node id is the public key in the text form of `Keyring.Identity.NodeId`.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-id-#{Base.encode16(:crypto.strong_rand_bytes(6))}")
      iex> {:ok, _} = Keyring.start_link(name: IdDoc, data_dir: dir)
      iex> sig = Keyring.Identity.sign("hello", IdDoc)
      iex> Keyring.Identity.verify(Keyring.Identity.public_key(IdDoc), "hello", sig)
      true

  Verification is strict everywhere (`verify_strict`): malformed or small-order
  public keys and non-canonical signatures are rejected.
  """
  use GenServer

  require Logger

  alias Keyring.{Instance, Native}
  alias Keyring.Identity.NodeId

  # Messages above this size are signed/verified on a dirty CPU scheduler.
  @dirty_threshold 64 * 1024

  @doc false
  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: Instance.child_name(opts[:name], __MODULE__))
  end

  @doc "The node's 32-byte Ed25519 public key."
  @spec public_key(Keyring.instance()) :: <<_::256>>
  def public_key(keyring \\ Keyring), do: Instance.fetch!(keyring, :public_key)

  @doc "The node id (52-character text form, see `Keyring.Identity.NodeId`)."
  @spec node_id(Keyring.instance()) :: NodeId.t()
  def node_id(keyring \\ Keyring), do: Instance.fetch!(keyring, :node_id)

  @doc "Signs `message` with the node's secret key; returns a 64-byte signature."
  @spec sign(binary(), Keyring.instance()) :: <<_::512>>
  def sign(message, keyring \\ Keyring)

  def sign(message, keyring) when is_binary(message) do
    keypair = Instance.fetch!(keyring, :keypair)

    if byte_size(message) <= @dirty_threshold,
      do: Native.sign(keypair, message),
      else: Native.sign_dirty(keypair, message)
  end

  def sign(other, _keyring),
    do: raise(ArgumentError, "can only sign a binary, got: #{inspect(other)}")

  @doc """
  Verifies `signature` over `message` by `public_key` (strictly). Returns a
  boolean; raises `ArgumentError` when the key is not 32 bytes or the
  signature not 64.
  """
  @spec verify(<<_::256>>, binary(), <<_::512>>) :: boolean()
  def verify(<<_::256>> = public_key, message, <<_::512>> = signature) when is_binary(message) do
    result =
      if byte_size(message) <= @dirty_threshold,
        do: Native.verify(public_key, message, signature),
        else: Native.verify_dirty(public_key, message, signature)

    {:ok, valid?} = result
    valid?
  end

  def verify(public_key, message, signature) do
    raise ArgumentError,
          "verify/3 expects a 32-byte public key, a binary message and a 64-byte signature, got: " <>
            inspect({public_key, message, signature}, limit: 5, printable_limit: 40)
  end

  @doc "BLAKE3 hash of `data` (see `Keyring.Hash` for streaming)."
  @spec hash(binary()) :: <<_::256>>
  defdelegate hash(data), to: Keyring.Hash

  @impl GenServer
  def init(opts) do
    name = opts[:name]
    keypair = opts[:keypair]
    public_key = Native.keypair_public_key(keypair)
    Instance.put(name, :keypair, keypair)
    Instance.put(name, :public_key, public_key)
    Instance.put(name, :node_id, NodeId.encode(public_key))
    Logger.info("Keyring #{inspect(name)}: node id #{NodeId.encode(public_key)}")
    Process.flag(:trap_exit, true)
    {:ok, %{name: name}}
  end

  @impl GenServer
  def terminate(_reason, %{name: name}) do
    Enum.each([:keypair, :public_key, :node_id], &Instance.erase(name, &1))
  end
end
