defmodule Keyring.Gateway.JSON do
  @moduledoc false
  # JSON through serde_json in the NIF. `encode/1` and `decode/1` run on the
  # caller's scheduler for small inputs and move to a dirty scheduler for
  # large ones (the NIF answers {:error, :dirty} past its budget).
  #
  # `safe/1` turns any term into one JSON can carry, for values that come
  # from elsewhere (RPC replies, task results): tuples become lists, atoms
  # strings, non-UTF-8 binaries %{"base64" => ...}, pids/refs/funs their
  # inspect text, map keys strings.

  alias Keyring.Native

  @spec encode(term()) :: {:ok, binary()} | {:error, term()}
  def encode(term) do
    case Native.json_encode(term) do
      {:error, :dirty} -> Native.json_encode_dirty(term)
      other -> other
    end
  end

  @spec encode!(term()) :: binary()
  def encode!(term) do
    case encode(term) do
      {:ok, json} -> json
      {:error, reason} -> raise ArgumentError, "cannot encode as JSON: #{inspect(reason)}"
    end
  end

  @spec decode(binary()) :: {:ok, term()} | {:error, term()}
  def decode(json) when is_binary(json) do
    case Native.json_decode(json) do
      {:error, :dirty} -> Native.json_decode_dirty(json)
      other -> other
    end
  end

  @spec safe(term()) :: term()
  def safe(t) when is_binary(t) do
    if String.valid?(t), do: t, else: %{"base64" => Base.encode64(t)}
  end

  def safe(t) when is_boolean(t) or is_nil(t) or is_number(t), do: t
  def safe(t) when is_atom(t), do: Atom.to_string(t)
  def safe(t) when is_tuple(t), do: t |> Tuple.to_list() |> safe()

  def safe(t) when is_list(t) do
    if proper_list?(t), do: Enum.map(t, &safe/1), else: inspect(t)
  end

  def safe(t) when is_map(t) and not is_struct(t) do
    Map.new(t, fn {k, v} -> {key(k), safe(v)} end)
  end

  def safe(%_{} = t), do: t |> Map.from_struct() |> safe()
  def safe(t), do: inspect(t)

  defp key(k) when is_binary(k), do: if(String.valid?(k), do: k, else: Base.encode64(k))
  defp key(k) when is_atom(k) or is_number(k), do: to_string(k)
  defp key(k), do: inspect(k)

  defp proper_list?([]), do: true
  defp proper_list?([_ | t]), do: proper_list?(t)
  defp proper_list?(_), do: false
end
