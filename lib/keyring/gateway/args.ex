defmodule Keyring.Gateway.Args do
  @moduledoc false
  # Reading operation arguments (a JSON object from a body or MCP, query
  # strings already typed by the router): each reader returns the value or
  # throws {:bad_request, text}, which Keyring.Gateway.Operations turns into
  # a 400 / a tool error. A key present with null is not a missing key: it is
  # refused like any other wrong type.

  alias Keyring.Identity.NodeId

  def string(args, key, opts \\ []) do
    {min, max} = {Keyword.get(opts, :min, 1), Keyword.get(opts, :max, 4096)}

    case fetch(args, key) do
      :missing -> default(key, opts)
      v when is_binary(v) and byte_size(v) >= min and byte_size(v) <= max -> v
      v when is_binary(v) -> bad("#{key} must be #{min}..#{max} bytes")
      _ -> bad("#{key} must be a string")
    end
  end

  def integer(args, key, opts \\ []) do
    {min, max} = {Keyword.get(opts, :min, 0), Keyword.get(opts, :max, 2 ** 53)}

    case fetch(args, key) do
      :missing -> default(key, opts)
      v when is_integer(v) and v >= min and v <= max -> v
      v when is_integer(v) -> bad("#{key} must be in #{min}..#{max}")
      _ -> bad("#{key} must be an integer")
    end
  end

  def boolean(args, key, default) do
    case fetch(args, key) do
      :missing -> default
      v when is_boolean(v) -> v
      _ -> bad("#{key} must be true or false")
    end
  end

  @doc "A list of up to 16 names of `[a-z0-9_.:-]`, 1..32 bytes each (roles)."
  def names(args, key) do
    case fetch(args, key) do
      :missing ->
        []

      list when is_list(list) and length(list) <= 16 ->
        cond do
          not Enum.all?(list, &(is_binary(&1) and &1 =~ ~r/\A[a-z0-9_.:-]{1,32}\z/)) ->
            bad("#{key} must be names of a-z, 0-9, '_', '.', ':', '-' (1..32 characters)")

          length(Enum.uniq(list)) != length(list) ->
            bad("#{key} must not repeat a name")

          true ->
            list
        end

      _ ->
        bad("#{key} must be a list of at most 16 names")
    end
  end

  @doc "A node id or keyring id in text form (52 characters) as 32 bytes."
  def key(args, key) do
    text = string(args, key, required: true, max: 64)

    case NodeId.parse(text) do
      {:ok, bytes} -> bytes
      _ -> bad("#{key} must be a 52-character id")
    end
  end

  @doc "Exactly one of two keys, as a string (e.g. text or base64)."
  def one_of(args, a, b) do
    case {Map.fetch(args, a), Map.fetch(args, b)} do
      {{:ok, v}, :error} when is_binary(v) -> {a, v}
      {:error, {:ok, v}} when is_binary(v) -> {b, v}
      _ -> bad("give exactly one of #{a} or #{b}, as a string")
    end
  end

  def bad(message), do: throw({:bad_request, message})

  defp fetch(args, key) do
    case Map.fetch(args, key) do
      {:ok, v} -> v
      :error -> :missing
    end
  end

  defp default(key, opts) do
    if opts[:required], do: bad("#{key} is required"), else: Keyword.get(opts, :default)
  end
end
