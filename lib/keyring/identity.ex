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
      iex> sig = Keyring.Identity.sign("hello", instance: IdDoc)
      iex> Keyring.Identity.verify(Keyring.Identity.public_key(instance: IdDoc), "hello", sig)
      true
      iex> receipt = Keyring.Identity.sign("paid 42", instance: IdDoc, domain: "shop/receipt")
      iex> Keyring.Identity.verify(Keyring.Identity.public_key(instance: IdDoc), "paid 42", receipt, domain: "shop/receipt")
      true
      iex> Keyring.Identity.verify(Keyring.Identity.public_key(instance: IdDoc), "paid 42", receipt)
      false

  Application signatures are domain-separated (see `sign/2`): the node key
  never signs an application's bytes as they are, so an application cannot
  be made to sign a membership entry, an invite or a handshake.

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
  @spec public_key(keyword()) :: <<_::256>>
  def public_key(opts \\ []), do: Instance.fetch!(instance!(opts), :public_key)

  @doc "The node id (52-character text form, see `Keyring.Identity.NodeId`)."
  @spec node_id(keyword()) :: NodeId.t()
  def node_id(opts \\ []), do: Instance.fetch!(instance!(opts), :node_id)

  defp instance!(opts), do: Keyword.validate!(opts, instance: Keyring)[:instance]

  @doc """
  Signs `message` with the node's key; returns a 64-byte signature.

  The signature covers `"keyring/app/v1\\0" <> message`, or with
  `domain: d`, `"keyring/app/v1/" <> d <> "\\0" <> message`: never the raw
  bytes. The same key signs TLS handshakes, membership entries and invites,
  each in its own domain, so no message an application signs here can pass
  for one of them (`verify/4` checks in the same domain). A domain is 1..64
  characters of `[A-Za-z0-9._:/-]`; use one per purpose (`"myapp/receipt"`),
  so a signature made for one purpose never verifies for another.

  Options: `:instance` (default `Keyring`) and `:domain`.
  """
  @spec sign(binary(), keyword()) :: <<_::512>>
  def sign(message, opts \\ [])

  def sign(message, opts) when is_binary(message) and is_list(opts) do
    opts = Keyword.validate!(opts, [:domain, instance: Keyring])
    domain = domain!(opts[:domain])
    keypair = Instance.fetch!(opts[:instance], :keypair)

    {:ok, signature} =
      if byte_size(message) <= @dirty_threshold,
        do: Native.sign_app(keypair, domain, message),
        else: Native.sign_app_dirty(keypair, domain, message)

    signature
  end

  def sign(other, _opts),
    do: raise(ArgumentError, "can only sign a binary, got: #{inspect(other)}")

  @doc """
  Verifies `signature` over `message` by `public_key` (strictly), in the
  application domain `sign/2` signs in (option `:domain`, default none).
  Returns a boolean; raises `ArgumentError` when the key is not 32 bytes or
  the signature not 64.
  """
  @spec verify(<<_::256>>, binary(), <<_::512>>, keyword()) :: boolean()
  def verify(public_key, message, signature, opts \\ [])

  def verify(<<_::256>> = public_key, message, <<_::512>> = signature, opts)
      when is_binary(message) do
    opts = Keyword.validate!(opts, [:domain])
    domain = domain!(opts[:domain])

    {:ok, valid?} =
      if byte_size(message) <= @dirty_threshold,
        do: Native.verify_app(public_key, domain, message, signature),
        else: Native.verify_app_dirty(public_key, domain, message, signature)

    valid?
  end

  def verify(public_key, message, signature, _opts) do
    raise ArgumentError,
          "verify/3 expects a 32-byte public key, a binary message and a 64-byte signature, got: " <>
            inspect({public_key, message, signature}, limit: 5, printable_limit: 40)
  end

  defp domain!(nil), do: nil

  defp domain!(domain) when is_binary(domain) do
    if domain =~ ~r"\A[A-Za-z0-9._:/-]{1,64}\z",
      do: domain,
      else:
        raise(
          ArgumentError,
          "a signing domain is 1..64 of [A-Za-z0-9._:/-], got: #{inspect(domain)}"
        )
  end

  defp domain!(other), do: domain!(to_string(other))

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
