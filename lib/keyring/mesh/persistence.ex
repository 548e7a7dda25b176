defmodule Keyring.Mesh.Persistence do
  @moduledoc false
  # Where a node keeps its keyrings.
  #
  #   * The membership log and local bookkeeping: in the instance's
  #     Keyring.Store, one durable ref per keyring ("keyring/rings/<hex id>").
  #     The value format is local (never read from a peer, never sent);
  #     entries are re-verified on load, so a tampered log is refused.
  #   * The root key (only on the node that created the keyring): never in
  #     the store, but in its own sealed key file beside identity.key,
  #     `<data_dir>/root_keys/<hex id>.key` (0600 in a 0700 directory,
  #     sealed with the instance passphrase; see Keyring.Identity.KeyFile).
  #
  # Records written before root keys had their own files (v1) carried the
  # sealed root key inline: load_all/2 moves it into its file and the next
  # save drops it from the store.

  require Logger

  alias Keyring.Identity.{KeyFile, PrivateFile}
  alias Keyring.Mesh.Log
  alias Keyring.Store

  @prefix "keyring/rings/"

  @type saved :: %{id: <<_::256>>, entries: [binary()], root: boolean(), spent: [binary()]}

  @spec save(Keyring.instance(), Keyring.Mesh.Rings.ring()) :: :ok | {:error, term()}
  def save(instance, ring) do
    data = %{v: 2, entries: Log.entries(ring.log), root: ring.root, spent: ring.spent}
    Store.put_ref(ref(Log.id(ring.log)), :erlang.term_to_binary(data), keyring: instance)
  end

  @doc """
  Keeps a new keyring's root key in its own sealed file (never overwritten).
  Without a passphrase the file mode alone protects it: that is logged as a
  warning the first time in this VM, then at debug level.
  """
  @spec save_root_key(Path.t(), <<_::256>>, reference(), binary() | nil) :: :ok | {:error, term()}
  def save_root_key(data_dir, id, keypair, passphrase) do
    warned = {__MODULE__, :unsealed_warned}
    level = if :persistent_term.get(warned, false), do: :debug, else: :warning
    if passphrase == nil, do: :persistent_term.put(warned, true)

    KeyFile.save_secret(KeyFile.root_key_path(data_dir, id), keypair, passphrase,
      log_unsealed: level
    )
  end

  @doc "Opens a keyring's root key (for root-only operations such as rotation)."
  @spec load_root_key(Path.t(), <<_::256>>, binary() | nil) ::
          {:ok, reference()} | {:error, term()}
  def load_root_key(data_dir, id, passphrase),
    do: KeyFile.load_secret(KeyFile.root_key_path(data_dir, id), passphrase)

  @spec load_all(Keyring.instance(), Path.t()) :: [saved()]
  def load_all(instance, data_dir) do
    case Store.list_refs(@prefix, keyring: instance) do
      {:ok, refs} -> Enum.flat_map(refs, &decode(&1, data_dir))
      {:error, _} -> []
    end
  end

  defp decode({@prefix <> hex, bytes}, data_dir) do
    with {:ok, id} <- Base.decode16(hex, case: :lower),
         %{entries: entries, spent: spent} = rec <- :erlang.binary_to_term(bytes, [:safe]) do
      [%{id: id, entries: entries, root: root?(rec, id, data_dir), spent: spent}]
    else
      _ -> []
    end
  end

  defp root?(%{v: 2, root: root}, _id, _data_dir), do: root
  defp root?(%{v: 1, root_key: nil}, _id, _data_dir), do: false

  defp root?(%{v: 1, root_key: sealed}, id, data_dir) when is_binary(sealed) do
    path = KeyFile.root_key_path(data_dir, id)

    case PrivateFile.write(path, sealed, create: true) do
      :ok ->
        Logger.warning("keyring: moved the root key of #{hex(id)} out of the store into #{path}")

      {:error, {:exists, _}} ->
        :ok

      {:error, reason} ->
        Logger.error("keyring: could not move the root key of #{hex(id)}: #{inspect(reason)}")
    end

    true
  end

  @spec delete(Keyring.instance(), <<_::256>>) :: :ok
  def delete(instance, id) do
    Store.delete_ref(ref(id), keyring: instance)
    :ok
  end

  defp ref(id), do: @prefix <> hex(id)
  defp hex(id), do: Base.encode16(id, case: :lower)
end
